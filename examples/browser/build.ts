import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const HERE = fileURLToPath(new URL(".", import.meta.url));

/** Bundles the example page (main.ts and the generated client) into outdir, beside its index.html. */
export async function buildBrowserExample(outdir: string): Promise<void> {
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: [`${HERE}main.ts`],
    outfile: `${outdir}/main.js`,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
  });
  await copyFile(`${HERE}index.html`, `${outdir}/index.html`);
}

// `npx tsx examples/browser/build.ts` writes examples/browser/dist (not committed).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildBrowserExample(`${HERE}dist`);
  console.log(`built ${HERE}dist`);
}
