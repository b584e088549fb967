/**
 * What the dashboard shows at one moment, computed from one set of windows, and the short
 * history the page draws its charts from. Pure: time is passed in.
 */
import { certificates, denials, figuresOf, type CertificateRow, type Denial, type Figures } from "./aggregate.js";
import { edges, type Edge } from "./edges.js";
import type { PodWindow } from "./window.js";

export interface PodFigures {
  namespace: string;
  pod: string;
  workload: string;
  identity?: string;
  inbound: Figures;
  outbound: Figures;
  error?: string;
}

export interface Snapshot {
  /** Milliseconds since the epoch. */
  at: number;
  pods: PodFigures[];
  edges: Edge[];
  certificates: CertificateRow[];
  /** Denials counted in this snapshot's window. */
  denials: Denial[];
}

export function snapshotOf(windows: readonly PodWindow[], at: number): Snapshot {
  const pods = windows
    .map((w) => {
      const p: PodFigures = {
        namespace: w.pod.namespace,
        pod: w.pod.pod,
        workload: w.pod.workload,
        inbound: figuresOf([w], { direction: "inbound" }),
        outbound: figuresOf([w], { direction: "outbound" }),
      };
      if (w.pod.identity) p.identity = w.pod.identity;
      if (w.error) p.error = w.error;
      return p;
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.workload.localeCompare(b.workload) || a.pod.localeCompare(b.pod));
  return { at, pods, edges: edges(windows), certificates: certificates(windows, at / 1000), denials: denials(windows) };
}

export interface DenialEvent extends Denial {
  at: number;
}

/** The last `capacity` snapshots and the last `denialCapacity` denials, newest last. */
export class History {
  private readonly snapshots: Snapshot[] = [];
  private readonly recentDenials: DenialEvent[] = [];

  constructor(
    private readonly capacity = 360,
    private readonly denialCapacity = 50,
  ) {}

  add(s: Snapshot): void {
    this.snapshots.push(s);
    if (this.snapshots.length > this.capacity) this.snapshots.splice(0, this.snapshots.length - this.capacity);
    for (const d of s.denials) this.recentDenials.push({ ...d, at: s.at });
    if (this.recentDenials.length > this.denialCapacity) this.recentDenials.splice(0, this.recentDenials.length - this.denialCapacity);
  }

  /** Chart points (figures per pod) for the whole history, and the newest snapshot in full. */
  state(): DashboardState {
    return {
      points: this.snapshots.map((s) => ({ at: s.at, pods: s.pods })),
      latest: this.snapshots[this.snapshots.length - 1],
      denials: [...this.recentDenials],
    };
  }
}

export interface DashboardState {
  points: { at: number; pods: PodFigures[] }[];
  latest: Snapshot | undefined;
  denials: DenialEvent[];
}
