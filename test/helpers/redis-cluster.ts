import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster, Redis } from "ioredis";
import { freePort } from "./process.js";
import { eventually } from "./redis.js";

const run = promisify(execFile);

/**
 * A real Redis Cluster of three primaries on loopback ports, in a temporary directory: made with
 * `redis-server --cluster-enabled yes` and `redis-cli --cluster create`, as an operator would.
 * A node can be stopped and started again with its slots (its nodes.conf is kept).
 */
export class PrivateRedisCluster {
  private readonly children = new Map<number, ChildProcess>();
  private constructor(
    readonly ports: number[],
    private readonly dir: string,
  ) {}

  static async start(): Promise<PrivateRedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), "redis-cluster-"));
    const ports = [await freePort(), await freePort(), await freePort()];
    const cluster = new PrivateRedisCluster(ports, dir);
    for (const port of ports) await cluster.startNode(port);
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    await run("redis-cli", ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"]);
    await cluster.untilHealthy();
    return cluster;
  }

  /** For REDIS_CLUSTER_NODES. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(",");
  }

  client(): Cluster {
    const c = new Cluster(this.ports.map((port) => ({ host: "127.0.0.1", port })));
    c.on("error", () => {});
    return c;
  }

  /** The node serving the slot of `key`. */
  async portOf(key: string): Promise<number> {
    const probe = new Redis(this.ports[0]!, "127.0.0.1");
    try {
      const slot = (await probe.call("CLUSTER", "KEYSLOT", key)) as number;
      const slots = (await probe.call("CLUSTER", "SLOTS")) as [number, number, [string, number]][];
      const range = slots.find(([from, to]) => slot >= from && slot <= to)!;
      return range[2][1];
    } finally {
      probe.disconnect();
    }
  }

  async startNode(port: number): Promise<void> {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(this.dir, `nodes-${port}.conf`),
        "--cluster-node-timeout",
        "2000",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      { stdio: "ignore" },
    );
    this.children.set(port, child);
    await eventually(`redis-server on ${port} answers`, async () => {
      const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => null });
      probe.on("error", () => {});
      try {
        return (await probe.ping()) === "PONG";
      } catch {
        return false;
      } finally {
        probe.disconnect();
      }
    });
  }

  async stopNode(port: number): Promise<void> {
    const child = this.children.get(port);
    this.children.delete(port);
    if (!child || child.exitCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  }

  /** Every node says cluster_state:ok (all slots served). */
  async untilHealthy(): Promise<void> {
    for (const port of this.ports) {
      await eventually(`cluster node ${port} is ok`, async () => {
        const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, retryStrategy: () => null });
        probe.on("error", () => {});
        try {
          return String(await probe.call("CLUSTER", "INFO")).includes("cluster_state:ok");
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      });
    }
  }

  async stop(): Promise<void> {
    for (const port of [...this.children.keys()]) await this.stopNode(port);
    await rm(this.dir, { recursive: true, force: true });
  }
}
