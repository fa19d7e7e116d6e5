/**
 * Mints a caller (bearer) token for development:
 *   npm run token -- --org acme --admin
 *   npm run token -- --org acme --tenant t1 --tenant t2 --sub alice --ttl 3600
 * It signs with AUTH_JWT_SECRET when set, otherwise with the development secret
 * the service keeps in DATA_DIR (created here if the service has not run yet).
 */
import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import { loadOrCreateDevSecret } from "../src/auth/dev-secret.js";

const { values } = parseArgs({
  options: {
    org: { type: "string" },
    admin: { type: "boolean", default: false },
    tenant: { type: "string", multiple: true, default: [] },
    sub: { type: "string", default: "dev-user" },
    ttl: { type: "string", default: "3600" },
  },
});
if (!values.org) {
  process.stderr.write("usage: npm run token -- --org ORG [--admin] [--tenant ID ...] [--sub NAME] [--ttl SECONDS]\n");
  process.exit(2);
}
const secret =
  process.env.AUTH_JWT_SECRET || (await loadOrCreateDevSecret(`${process.env.DATA_DIR || "./data"}/dev-auth-secret`));
let jwt = new SignJWT({
  organization_id: values.org,
  roles: values.admin ? ["admin"] : [],
  tenant_ids: values.tenant,
})
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setSubject(values.sub)
  .setIssuedAt()
  .setExpirationTime(`${Number(values.ttl)}s`);
if (process.env.AUTH_ISSUER) jwt = jwt.setIssuer(process.env.AUTH_ISSUER);
if (process.env.AUTH_AUDIENCE) jwt = jwt.setAudience(process.env.AUTH_AUDIENCE);
process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
