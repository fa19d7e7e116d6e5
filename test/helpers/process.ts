import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { connect, createServer, type AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Every log line the process has written so far (stdout and stderr). */
  lines: string[];
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The service as a real separate process (`node --import tsx src/main.ts`),
 * the way an operator runs it; resolves once its port accepts connections.
 */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 30_000,
  /** What to run: the TypeScript sources (through tsx), or the compiled build as in production. */
  entry: "source" | "build" = "source",
): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const args = entry === "build" ? ["dist/src/main.js"] : ["--import", "tsx", "src/main.ts"];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => lines.push(line));
  createInterface({ input: child.stderr }).on("line", (line) => lines.push(line));
  // Ready when the port accepts connections (whatever LOG_LEVEL hides), or failed when the process exits.
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const onExit = (code: number | null) =>
      reject(new Error(`server exited with ${code} before listening:\n${lines.join("\n")}`));
    child.once("exit", onExit);
    // A port the process cannot bind (a config-error test) is never polled: only its exit is awaited.
    if (!(port > 0 && port < 65536)) return;
    const attempt = () => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        child.off("exit", onExit);
        resolve();
      });
      socket.once("error", () => {
        socket.destroy();
        if (child.exitCode !== null) return;
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          reject(new Error(`server did not start within ${timeoutMs} ms:\n${lines.join("\n")}`));
        } else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    lines,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, "exit")) as [number | null];
      return code;
    },
  };
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
