import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { parseAllDocuments } from "yaml";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, "utf8");

/** The fields of the Kubernetes objects in deploy/ that these tests read. */
type Labels = Record<string, string>;
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}
interface HttpGetProbe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  ports: { name: string; containerPort: number }[];
  env: { name: string; value: string }[];
  securityContext: Record<string, unknown>;
  lifecycle: { preStop: { exec: { command: string[] } } };
  readinessProbe: HttpGetProbe;
  livenessProbe: HttpGetProbe;
  startupProbe: HttpGetProbe;
}
interface Deployment extends Manifest {
  spec: {
    selector: { matchLabels: Labels };
    strategy: { rollingUpdate: { maxUnavailable: number | string } };
    template: {
      metadata: { labels: Labels; annotations: Record<string, string> };
      spec: {
        containers: Container[];
        securityContext: { runAsNonRoot: boolean; runAsUser: number };
        terminationGracePeriodSeconds: number;
      };
    };
  };
}
interface Service extends Manifest {
  spec: { selector: Labels; ports: { targetPort: string | number }[] };
}
interface PodDisruptionBudget extends Manifest {
  spec: { selector: { matchLabels: Labels }; maxUnavailable: number | string };
}
interface HorizontalPodAutoscaler extends Manifest {
  spec: { scaleTargetRef: { apiVersion: string; kind: string; name: string }; minReplicas: number };
}
interface Kinds {
  Deployment: Deployment;
  Service: Service;
  PodDisruptionBudget: PodDisruptionBudget;
  HorizontalPodAutoscaler: HorizontalPodAutoscaler;
}

/** Every document of a YAML file; a syntax error or a duplicate key fails the test instead of being read past. */
function parseYamlDocuments(source: string): unknown[] {
  return parseAllDocuments(source, { uniqueKeys: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join("; "));
    return doc.toJS() as unknown;
  });
}

const kustomization = parseYamlDocuments(read("deploy/kustomization.yaml"))[0] as { resources: string[] };
const manifests = kustomization.resources.flatMap((file) => parseYamlDocuments(read(`deploy/${file}`)) as Manifest[]);
const ofKind = <K extends keyof Kinds>(kind: K): Kinds[K] => {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]! as Kinds[K];
};

describe("Kubernetes manifests (deploy/)", () => {
  it("hold a Deployment, a Service, a PodDisruptionBudget and a HorizontalPodAutoscaler that point at each other", () => {
    const deployment = ofKind("Deployment");
    const service = ofKind("Service");
    const pdb = ofKind("PodDisruptionBudget");
    const hpa = ofKind("HorizontalPodAutoscaler");
    expect([deployment.apiVersion, service.apiVersion, pdb.apiVersion, hpa.apiVersion]).toEqual([
      "apps/v1",
      "v1",
      "policy/v1",
      "autoscaling/v2",
    ]);

    const podLabels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(podLabels);
    expect(service.spec.selector).toEqual(podLabels);
    expect(pdb.spec.selector.matchLabels).toEqual(podLabels);
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: deployment.metadata.name,
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(pdb.spec.maxUnavailable).toBe(1);

    // The Service exposes the container's one port, by name.
    const container = deployment.spec.template.spec.containers[0]!;
    const port = container.ports.find((p) => p.name === service.spec.ports[0]!.targetPort);
    expect(port?.containerPort).toBe(8080);
    expect(container.env).toContainEqual({ name: "PORT", value: String(port!.containerPort) });
  });

  it("run the container as non-root with a shutdown window longer than preStop plus the drain", () => {
    const pod = ofKind("Deployment").spec.template.spec;
    const container = pod.containers[0]!;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).not.toBe(0);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    const grace = Number(container.env.find((e) => e.name === "SHUTDOWN_GRACE_SECONDS")!.value);
    const preStop = Number(container.lifecycle.preStop.exec.command[1]);
    expect(container.lifecycle.preStop.exec.command[0]).toBe("sleep");
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + grace + 5);
    expect(ofKind("Deployment").spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  describe("probes point at real routes", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer();
    });
    afterAll(() => server.stop());

    it("readiness on /readyz, liveness and startup on /healthz, all answering 200 on a healthy replica", async () => {
      const container = ofKind("Deployment").spec.template.spec.containers[0]!;
      const probes = {
        readiness: container.readinessProbe.httpGet,
        liveness: container.livenessProbe.httpGet,
        startup: container.startupProbe.httpGet,
      };
      expect(probes.readiness.path).toBe("/readyz");
      expect(probes.liveness.path).toBe("/healthz");
      for (const probe of Object.values(probes)) {
        expect(container.ports.map((p) => p.name)).toContain(probe.port);
        const res = await fetch(`${server.baseUrl}${probe.path}`);
        expect(res.status).toBe(200);
      }
      const annotations = ofKind("Deployment").spec.template.metadata.annotations;
      expect((await fetch(`${server.baseUrl}${annotations["prometheus.io/path"]}`)).status).toBe(200);
    });
  });
});

describe("Dockerfile", () => {
  const dockerfile = read("Dockerfile");
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#"));

  it("is multi-stage on a Node LTS image and runs as a non-root user", () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(dockerfile);
    expect(Number(image?.[1]) % 2).toBe(0); // even majors are the LTS lines
    expect(instructions.filter((l) => l.startsWith("FROM ")).length).toBeGreaterThanOrEqual(2);
    const finalStage = instructions.slice(instructions.map((l) => l.startsWith("FROM ")).lastIndexOf(true));
    const user = finalStage.filter((l) => l.startsWith("USER ")).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/USER (root|0)\b/);
  });

  it("copies files that exist and starts what npm start starts", () => {
    for (const line of instructions.filter((l) => l.startsWith("COPY ") && !l.includes("--from="))) {
      const sources = line
        .replace(/--chown=\S+/g, "")
        .split(/\s+/)
        .slice(1, -1);
      for (const source of sources) expect(existsSync(`${ROOT}${source}`), source).toBe(true);
    }
    const start = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.start!;
    const cmd = instructions.find((l) => l.startsWith("CMD "))!;
    expect((JSON.parse(cmd.slice(4)) as string[]).join(" ")).toBe(start);
    // What the build stage compiles is what the final stage runs.
    expect(dockerfile).toContain("RUN npm run build");
    expect(read(".dockerignore")).toMatch(/^node_modules$/m);
  });

  it("installs every package the server imports at run time (the image omits devDependencies)", () => {
    const dependencies = Object.keys(
      (JSON.parse(read("package.json")) as { dependencies: Record<string, string> }).dependencies,
    );
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(`${ROOT}${dir}`, { withFileTypes: true })) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory()) walk(path);
        else if (path.endsWith(".ts")) {
          for (const line of read(path).split("\n")) {
            if (/^\s*(import|export) type /.test(line)) continue; // erased by the compiler
            for (const m of line.matchAll(/(?:from |import\()"([^".][^"]*)"/g)) {
              const name = m[1]!.startsWith("@") ? m[1]!.split("/").slice(0, 2).join("/") : m[1]!.split("/")[0]!;
              if (!name.startsWith("node:")) imported.add(name);
            }
          }
        }
      }
    };
    walk("src");
    walk("gen");
    expect(imported.size).toBeGreaterThan(5);
    expect([...imported].filter((name) => !dependencies.includes(name))).toEqual([]);
  });
});
