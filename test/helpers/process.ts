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
  /** Resolves with the first line (already written, or still to come) that matches. */
  waitForLine(pattern: RegExp): Promise<string>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * The service as a real separate process (`node --import tsx src/main.ts`),
 * the way an operator runs it; resolves once its port accepts connections and,
 * when LOG_LEVEL shows it, its listening line has been read from the pipe (the
 * port can open before the start-up lines arrive).
 */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 30_000,
  /** What to run: the TypeScript sources (through tsx), or the compiled build as in production. */
  entry: "source" | "build" = "source",
  /** Flags for node itself, e.g. --cpu-prof for the benchmark's profile run. */
  nodeArgs: string[] = [],
): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const args = [...nodeArgs, ...(entry === "build" ? ["dist/src/main.js"] : ["--import", "tsx", "src/main.ts"])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const onLine = (line: string) => {
    lines.push(line);
    for (const waiter of waiters) {
      if (!waiter.pattern.test(line)) continue;
      waiters.delete(waiter);
      waiter.resolve(line);
    }
  };
  createInterface({ input: child.stdout }).on("line", onLine);
  createInterface({ input: child.stderr }).on("line", onLine);
  const waitForLine = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) {
        return reject(new Error(`server has exited without writing ${pattern}:\n${lines.join("\n")}`));
      }
      const waiter = { pattern, resolve };
      waiters.add(waiter);
      child.once("exit", (code) => {
        if (!waiters.delete(waiter)) return;
        reject(new Error(`server exited with ${code} before writing ${pattern}:\n${lines.join("\n")}`));
      });
    });
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
  if (port > 0 && port < 65536 && LOGS_LISTENING.has(env.LOG_LEVEL ?? "info")) await waitForLine(/ listening /);
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    lines,
    waitForLine,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, "exit")) as [number | null];
      return code;
    },
  };
}

/** The levels at which the service writes its "listening" line. */
const LOGS_LISTENING = new Set(["trace", "debug", "info"]);

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
