/**
 * Schema validation of rendered manifests: built-in kinds with kubernetes-models' validators
 * (generated from the Kubernetes OpenAPI), cert-manager and trust-manager kinds with
 * @kubernetes-models/cert-manager. An object of any other kind is an error, so nothing slips by.
 */
import * as k8s from "kubernetes-models";
import * as cm from "@kubernetes-models/cert-manager";

type Validatable = { validate(): void };
type Ctor = new (data: any) => Validatable;

const MODELS: Record<string, Record<string, Ctor>> = {
  v1: k8s.v1 as unknown as Record<string, Ctor>,
  "apps/v1": k8s.apps.v1 as unknown as Record<string, Ctor>,
  "batch/v1": k8s.batch.v1 as unknown as Record<string, Ctor>,
  "policy/v1": k8s.policy.v1 as unknown as Record<string, Ctor>,
  "rbac.authorization.k8s.io/v1": k8s.rbacAuthorizationK8sIo.v1 as unknown as Record<string, Ctor>,
  "admissionregistration.k8s.io/v1": k8s.admissionregistrationK8sIo.v1 as unknown as Record<string, Ctor>,
  "apiextensions.k8s.io/v1": k8s.apiextensionsK8sIo.v1 as unknown as Record<string, Ctor>,
  "cert-manager.io/v1": cm.certManagerIo.v1 as unknown as Record<string, Ctor>,
  "trust.cert-manager.io/v1alpha1": cm.trustCertManagerIo.v1alpha1 as unknown as Record<string, Ctor>,
};

/** Throws with the object's kind/name and the schema errors when it does not validate. */
export function validateManifest(obj: unknown): void {
  const o = obj as { apiVersion?: string; kind?: string; metadata?: { name?: string } };
  const ctor = MODELS[o.apiVersion ?? ""]?.[o.kind ?? ""];
  if (!ctor) throw new Error(`no schema for ${o.apiVersion} ${o.kind} (${o.metadata?.name})`);
  try {
    new ctor(obj).validate();
  } catch (err) {
    throw new Error(`${o.kind} ${o.metadata?.name} does not validate: ${(err as Error).message}`);
  }
}
