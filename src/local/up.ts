/**
 * `tether local up --dir FOLDER`: the local mesh driven by a folder of manifests, with the
 * dashboard. Runs until stopped.
 */
import { LocalFolderCluster } from "../cluster/local.js";
import { startDashboard } from "../viz/dashboard.js";
import { scrapeSource } from "../viz/sources.js";
import { fileTargets } from "../viz/targets.js";
import type { Logger } from "./log.js";
import { LocalMesh } from "./mesh.js";
import { targetsFile } from "./names.js";
import { FolderReconciler } from "./reconcile.js";

export interface LocalUpOptions {
  stateDir: string;
  instance: string;
  dir: string;
  logger: Logger;
  dashboardPort?: number;
  podSubnet?: string;
}

export interface LocalUp {
  mesh: LocalMesh;
  reconciler: FolderReconciler;
  dashboardUrl: string | undefined;
  stop(): Promise<void>;
}

export async function startLocalUp(options: LocalUpOptions): Promise<LocalUp> {
  const folder = await LocalFolderCluster.open(options.dir, { logger: options.logger as never });
  const mesh = await LocalMesh.start({
    stateDir: options.stateDir,
    instance: options.instance,
    logger: options.logger,
    ...(options.podSubnet ? { podSubnet: options.podSubnet } : {}),
  });
  const reconciler = new FolderReconciler(mesh, folder, options.logger);
  try {
    await reconciler.start();
    const dashboard =
      options.dashboardPort === undefined
        ? undefined
        : await startDashboard({
            source: scrapeSource({ targets: fileTargets(targetsFile(options.stateDir)) }),
            port: options.dashboardPort,
            logger: options.logger as never,
          });
    return {
      mesh,
      reconciler,
      dashboardUrl: dashboard?.url,
      async stop() {
        reconciler.stop();
        await folder.close();
        await dashboard?.close();
        await mesh.stop();
      },
    };
  } catch (err) {
    reconciler.stop();
    await folder.close();
    await mesh.stop();
    throw err;
  }
}
