import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const HERE = fileURLToPath(new URL(".", import.meta.url));

/** Bundles the sample host page and the sample renderer (each with its half of the SDK) into outdir. */
export async function buildEmbedExample(outdir: string): Promise<void> {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: { host: `${HERE}host.ts`, renderer: `${HERE}renderer.ts` },
    outdir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
  });
  for (const page of ["host.html", "renderer.html"]) await copyFile(`${HERE}${page}`, `${outdir}/${page}`);
}
