import { readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildBrowserExample } from "./build.js";

const TYPES: Record<string, string> = {
  "/index.html": "text/html; charset=utf-8",
  "/main.js": "text/javascript; charset=utf-8",
  "/main.js.map": "application/json",
};

export interface ExampleServer {
  /** http://host:port — the page's origin, to list in CORS_ALLOWED_ORIGINS. */
  origin: string;
  close(): Promise<void>;
}

/**
 * Serves the built page from its own origin, plus /config.json: the API's
 * address and a caller token. That endpoint stands in for the page's own
 * backend, which would mint a short-lived token for its signed-in user.
 */
export async function serveBrowserExample(options: {
  dir: string;
  host?: string;
  port?: number;
  config: () => Promise<{ apiBaseUrl: string; callerToken: string; embedBaseUrl?: string }>;
}): Promise<ExampleServer> {
  const server = http.createServer((req, res) => {
    answer(req, res).catch(() => res.destroy());
  });
  const answer = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    try {
      if (path === "/config.json") {
        const config = await options.config();
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(JSON.stringify({ embedBaseUrl: "https://embed.example.com/dashboards", ...config }));
        return;
      }
      const file = path === "/" ? "/index.html" : path;
      const type = TYPES[file];
      if (!type) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": type }).end(await readFile(`${options.dir}${file}`));
    } catch {
      res.writeHead(500).end();
    }
  };
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// npx tsx examples/browser/serve.ts --api http://localhost:8080 --token "$(npm run -s token -- --org acme --admin)"
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      api: { type: "string", default: "http://localhost:8080" },
      token: { type: "string" },
      port: { type: "string", default: "5173" },
      host: { type: "string", default: "localhost" },
    },
  });
  if (!values.token) throw new Error("--token is required (mint one with: npm run -s token -- --org ORG --admin)");
  const dir = fileURLToPath(new URL("./dist", import.meta.url));
  await buildBrowserExample(dir);
  const served = await serveBrowserExample({
    dir,
    host: values.host,
    port: Number(values.port),
    config: () => Promise.resolve({ apiBaseUrl: values.api ?? "", callerToken: values.token ?? "" }),
  });
  console.log(`example page on ${served.origin} (start the service with CORS_ALLOWED_ORIGINS=${served.origin})`);
}
