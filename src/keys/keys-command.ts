/**
 * `npm run keys -- rotate --all | retire --org ORG --kid=KID --now | retire --global --kid=KID --now | reseal`
 * The operator's signing-key commands, on the configured database and key-encryption keys; every action audited.
 */
import { parseArgs } from "node:util";
import { keyEncryptionKeys } from "../app.js";
import { loadConfig } from "../config/config.js";
import { createLogger } from "../log/logger.js";
import { embeddedSql } from "../store/embedded-sql.js";
import { postgresSql } from "../store/postgres-sql.js";
import { KeySealer } from "../tokens/key-sealing.js";
import { KeyOperations } from "./key-operations.js";

const USAGE = `usage: npm run keys -- <command>
  rotate --all [--reason TEXT]            rotate every organization's key now (an emergency; not rate-limited)
  retire --org ORG --kid=KID --now        unpublish one organization's key at once: tokens it signed stop verifying
  retire --global --kid=KID --now         the same for a key of the previous release's global ring
  reseal                                  re-seal every stored key under the first KEY_ENCRYPTION_KEYS entry
options: --actor NAME (recorded in the audit trail; default "operator")`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

const { positionals, values } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        all: { type: "boolean" },
        org: { type: "string" },
        global: { type: "boolean" },
        kid: { type: "string" },
        now: { type: "boolean" },
        reason: { type: "string" },
        actor: { type: "string" },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
})();
const [command] = positionals;
if (positionals.length !== 1 || !["rotate", "retire", "reseal"].includes(command!)) fail("one command, please");
if (command === "rotate" && !values.all)
  fail("rotate needs --all (an organization rotates its own key with RotateSigningKey)");
if (command === "retire") {
  if (!values.kid) fail("retire needs --kid");
  if (!values.now) fail("retire needs --now: it ends every token the key signed (a rotation retires with overlap)");
  if (!values.org === !values.global) fail("retire needs exactly one of --org ORG and --global");
}

const config = loadConfig(process.env);
const log = createLogger(config.logLevel, config.logFormat);
const actor = { subject: values.actor ?? "operator" };
const sql =
  config.database.kind === "postgres"
    ? postgresSql(config.database.url, 2)
    : await embeddedSql(config.database.dataDir);
let exitCode = 0;
try {
  const operations = await KeyOperations.open(
    sql,
    config,
    await KeySealer.create(await keyEncryptionKeys(config, log)),
  );
  const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
  if (command === "rotate") {
    for (const { organizationId, rotation } of await operations.rotateAll(actor, values.reason)) {
      print({ organizationId, kid: rotation.kid, retiredKid: rotation.retired?.kid });
    }
  } else if (command === "retire" && values.global) {
    if (!(await operations.retireGlobalNow(values.kid!, actor))) {
      process.stderr.write(`the global ring has no published key "${values.kid}"\n`);
      exitCode = 1;
    } else print({ retired: values.kid, ring: "global" });
  } else if (command === "retire") {
    const { role, rotation } = await operations.retireNow(values.org!, values.kid!, actor);
    print({ organizationId: values.org, retired: values.kid, was: role, nowActive: rotation?.kid });
  } else {
    const outcome = await operations.reseal(actor);
    print(outcome);
    if (outcome.failed.length > 0) exitCode = 1;
  }
} catch (err) {
  process.stderr.write(`keys ${command}: ${(err as Error).message}\n`);
  exitCode = 1;
} finally {
  await sql.close();
}
process.exit(exitCode);
