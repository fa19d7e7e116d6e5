/**
 * The OpenAPI 3.1 description of the guide's REST routes, served at
 * /api/v1/openapi.json. test/rest/openapi-conformance.test.ts validates real
 * responses against it, so it cannot drift from what the routes answer.
 */

import { REASONS } from "../errors/registry.js";
import { EMBED_PERMISSIONS, EMBED_THEMES } from "../tokens/embed-settings.js";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const response = (name: string) => ({ $ref: `#/components/responses/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });

const errorResponse = (description: string, headers?: object) => ({
  description,
  ...(headers ? { headers } : {}),
  content: json(ref("ErrorEnvelope")),
});

const retryAfter = (description: string) => ({
  "Retry-After": { description, required: true, schema: { type: "string", pattern: "^[0-9]+$" } },
});

/** Failures every authenticated route can answer. */
const commonErrors = {
  "401": response("Unauthorized"),
  "422": response("ValidationError"),
  "429": response("RateLimited"),
  "500": response("ServerError"),
  "503": response("Unavailable"),
  "504": response("DeadlineExceeded"),
};

const etagHeader = {
  ETag: {
    description: "The dashboard's version (AIP-154), to send back in If-Match.",
    required: true,
    schema: { type: "string" },
  },
};

const tenantParameter = {
  name: "tenant_id",
  in: "path",
  required: true,
  description: "The organization's identifier of its customer.",
  schema: ref("Id"),
};

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "dashboard-service REST API",
    version: "1.0.0",
    description:
      "The original guide's REST routes, served beside the Connect/gRPC API on the same port and backed by the same " +
      "operations, policy, validation and rate limits. Every response is the guide's envelope: " +
      "`{success: true, data}` or `{success: false, error, code}`.",
  },
  servers: [{ url: "/" }],
  security: [{ bearerAuth: [] }],
  paths: {
    "/api/v1/dashboards": {
      post: {
        operationId: "createDashboard",
        summary: "Create the tenant's dashboard (the CreateDashboard RPC).",
        requestBody: { required: true, content: json(ref("CreateDashboardRequest")) },
        responses: {
          "201": {
            description: "Created.",
            headers: {
              Location: { description: "The dashboard's route.", required: true, schema: { type: "string" } },
              ...etagHeader,
            },
            content: json(ref("DashboardEnvelope")),
          },
          "403": response("Forbidden"),
          "409": response("AlreadyExists"),
          "413": response("PayloadTooLarge"),
          ...commonErrors,
        },
      },
      get: {
        operationId: "listDashboards",
        summary: "List the dashboards the caller may see, oldest first (the ListDashboards RPC).",
        parameters: [
          {
            name: "skip",
            in: "query",
            description: "Skip this many dashboards.",
            schema: { type: "integer", minimum: 0, default: 0 },
          },
          {
            name: "limit",
            in: "query",
            description: "At most this many dashboards; 0 or absent means 100, above 1000 means 1000.",
            schema: { type: "integer", minimum: 0, default: 100 },
          },
        ],
        responses: {
          "200": {
            description: "A page of dashboards and how many the caller may see in all.",
            content: json(ref("DashboardListEnvelope")),
          },
          ...commonErrors,
        },
      },
    },
    "/api/v1/dashboards/iframe-token": {
      post: {
        operationId: "createIframeToken",
        summary: "Mint a short-lived signed token to embed the tenant's dashboard (the CreateIframeToken RPC).",
        requestBody: { required: true, content: json(ref("CreateIframeTokenRequest")) },
        responses: {
          "200": { description: "The token.", content: json(ref("IframeTokenEnvelope")) },
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "409": errorResponse("Embedding of the dashboard is paused (code EMBEDDING_PAUSED)."),
          "413": response("PayloadTooLarge"),
          ...commonErrors,
        },
      },
    },
    "/api/v1/dashboards/{tenant_id}": {
      get: {
        operationId: "getDashboard",
        summary: "The tenant's dashboard (the GetDashboard RPC).",
        parameters: [tenantParameter],
        responses: {
          "200": { description: "The dashboard.", headers: etagHeader, content: json(ref("DashboardEnvelope")) },
          "403": response("Forbidden"),
          "404": response("NotFound"),
          ...commonErrors,
        },
      },
      patch: {
        operationId: "updateDashboard",
        summary:
          "Change the tenant's dashboard with a JSON merge patch (RFC 7396) of its fields (the UpdateDashboard RPC).",
        description:
          "Each member names a field to change; null resets it to its default (no description, no origins, " +
          "embedding on, the renderer's own settings, every permission). Only organization admins may change " +
          "workspace_id, allowed_origins, embedding_enabled and permission_ceiling; a tenant's caller may change " +
          "name, description and embed_defaults, within the ceiling. Changing workspace_id revokes the dashboard's " +
          "tokens.",
        parameters: [
          tenantParameter,
          {
            name: "If-Match",
            in: "header",
            description:
              "The ETag the change is based on (or *); absent means the last write wins. A mismatch is 412 and " +
              "changes nothing.",
            schema: { type: "string" },
          },
        ],
        requestBody: {
          required: true,
          content: {
            "application/merge-patch+json": { schema: ref("DashboardPatch") },
            "application/json": { schema: ref("DashboardPatch") },
          },
        },
        responses: {
          "200": {
            description: "The changed dashboard.",
            headers: etagHeader,
            content: json(ref("DashboardEnvelope")),
          },
          "403": response("Forbidden"),
          "404": response("NotFound"),
          "412": errorResponse("The dashboard changed since the If-Match etag was read (code ETAG_MISMATCH)."),
          "413": response("PayloadTooLarge"),
          "415": errorResponse("The body is not a merge patch (code UNSUPPORTED_MEDIA_TYPE)."),
          ...commonErrors,
        },
      },
      delete: {
        operationId: "deleteDashboard",
        summary: "Delete the tenant's dashboard (the DeleteDashboard RPC).",
        parameters: [tenantParameter],
        responses: {
          "200": { description: "Deleted.", content: json(ref("DeletedEnvelope")) },
          "403": response("Forbidden"),
          "404": response("NotFound"),
          ...commonErrors,
        },
      },
    },
    "/api/v1/openapi.json": {
      get: {
        operationId: "getOpenApiDocument",
        summary: "This document.",
        security: [],
        responses: { "200": { description: "The OpenAPI 3.1 document.", content: json({ type: "object" }) } },
      },
    },
  },
  components: {
    securitySchemes: {
      bearerAuth: {
        type: "http",
        scheme: "bearer",
        bearerFormat: "JWT",
        description:
          'A caller token with exp, organization_id and sub (or user_id); roles ["admin"] grants every tenant of the ' +
          "organization, otherwise tenant_ids lists the tenants the caller may use.",
      },
    },
    schemas: {
      Id: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" },
      Dashboard: {
        type: "object",
        required: [
          "id",
          "tenant_id",
          "workspace_id",
          "dashboard_id",
          "name",
          "description",
          "organization_id",
          "created_by",
          "created_at",
          "updated_at",
          "allowed_origins",
          "embedding_enabled",
          "embed_defaults",
          "permission_ceiling",
          "etag",
        ],
        additionalProperties: false,
        properties: {
          id: { type: "string", format: "uuid" },
          tenant_id: ref("Id"),
          workspace_id: ref("Id"),
          dashboard_id: { type: "string", format: "uuid", description: "Equals id; the guide exposes both." },
          name: { type: "string", minLength: 1, maxLength: 200 },
          description: { type: "string", maxLength: 2000 },
          organization_id: { type: "string", description: "From the caller's token." },
          created_by: { type: "string", description: "The subject of the token that created it." },
          created_at: { type: "string", format: "date-time" },
          updated_at: { type: "string", format: "date-time" },
          allowed_origins: ref("Origins"),
          embedding_enabled: {
            type: "boolean",
            description: "false pauses embedding: no token is minted and existing ones do not verify until it is true.",
          },
          embed_defaults: ref("EmbedSettings"),
          permission_ceiling: {
            ...ref("Permissions"),
            description: "The most a token for this dashboard may grant.",
          },
          etag: { type: "string", description: "The version it was read at; also its ETag header." },
        },
      },
      Origins: {
        type: "array",
        maxItems: 20,
        items: { type: "string", format: "uri", description: "scheme://host[:port]" },
        description: "The origins an iframe token may be bound to.",
      },
      Permissions: { type: "array", uniqueItems: true, items: { enum: [...EMBED_PERMISSIONS] } },
      Theme: { enum: [...EMBED_THEMES] },
      EmbedSettings: {
        type: "object",
        required: ["permissions", "locale", "time_zone", "theme"],
        additionalProperties: false,
        properties: {
          permissions: ref("Permissions"),
          locale: { type: "string", description: 'A BCP 47 tag in canonical form; "" for the renderer\'s own.' },
          time_zone: {
            type: "string",
            description: 'An IANA time zone in canonical form; "" for the renderer\'s own.',
          },
          theme: { enum: [...EMBED_THEMES, ""], description: '"" leaves the theme to the renderer.' },
        },
      },
      EmbedSettingsInput: {
        type: "object",
        properties: {
          permissions: { ...ref("Permissions"), type: ["array", "null"] },
          locale: { type: ["string", "null"], description: "A BCP 47 tag Intl accepts; stored in canonical form." },
          time_zone: { type: ["string", "null"], description: "An IANA time zone Intl accepts; stored canonical." },
          theme: { anyOf: [ref("Theme"), { type: "null" }] },
        },
      },
      DashboardPatch: {
        type: "object",
        minProperties: 1,
        additionalProperties: false,
        properties: {
          name: { type: "string", minLength: 1, maxLength: 200 },
          description: { type: ["string", "null"], maxLength: 2000 },
          workspace_id: ref("Id"),
          allowed_origins: { anyOf: [ref("Origins"), { type: "null" }] },
          embedding_enabled: { type: ["boolean", "null"] },
          embed_defaults: { anyOf: [ref("EmbedSettingsInput"), { type: "null" }] },
          permission_ceiling: { anyOf: [ref("Permissions"), { type: "null" }] },
        },
      },
      CreateDashboardRequest: {
        type: "object",
        required: ["tenant_id", "workspace_id", "name"],
        properties: {
          tenant_id: ref("Id"),
          workspace_id: ref("Id"),
          name: { type: "string", minLength: 1, maxLength: 200 },
          description: { type: ["string", "null"], maxLength: 2000 },
          request_id: {
            ...ref("Id"),
            description:
              "Makes the call safe to retry: a retry with the same request_id returns the original dashboard (201) instead of 409; a different request reusing it is 422.",
          },
          allowed_origins: { anyOf: [ref("Origins"), { type: "null" }] },
          embedding_enabled: { type: ["boolean", "null"], description: "Organization admins only; default true." },
          embed_defaults: { anyOf: [ref("EmbedSettingsInput"), { type: "null" }] },
          permission_ceiling: {
            anyOf: [ref("Permissions"), { type: "null" }],
            description: "Organization admins only; default every permission.",
          },
        },
      },
      CreateIframeTokenRequest: {
        type: "object",
        required: ["tenant_id", "workspace_id", "dashboard_id"],
        properties: {
          tenant_id: ref("Id"),
          workspace_id: ref("Id"),
          dashboard_id: ref("Id"),
          valid_until: {
            type: ["integer", "null"],
            description:
              "Unix seconds at which the token stops working; absent means the server's default lifetime. In the past " +
              "or beyond the server's maximum lifetime is 422.",
          },
          origin: {
            type: ["string", "null"],
            description: "Binds the token to one of the dashboard's allowed_origins.",
          },
          permissions: {
            anyOf: [ref("Permissions"), { type: "null" }],
            description: "What the viewer may do; absent means the dashboard's default. More than its ceiling is 422.",
          },
          locale: { type: ["string", "null"], description: "A BCP 47 tag; absent means the dashboard's default." },
          time_zone: { type: ["string", "null"], description: "An IANA time zone; absent means the default." },
          theme: { anyOf: [ref("Theme"), { type: "null" }] },
          viewer: {
            type: ["object", "null"],
            required: ["id"],
            properties: {
              id: { type: "string", minLength: 1, maxLength: 256 },
              display_name: { type: "string", maxLength: 200 },
            },
            description: "The end user within the tenant, for the renderer to attribute views and queries.",
          },
        },
      },
      DashboardEnvelope: {
        type: "object",
        required: ["success", "data"],
        additionalProperties: false,
        properties: { success: { const: true }, data: ref("Dashboard") },
      },
      DashboardListEnvelope: {
        type: "object",
        required: ["success", "data", "total"],
        additionalProperties: false,
        properties: {
          success: { const: true },
          data: { type: "array", items: ref("Dashboard") },
          total: { type: "integer", minimum: 0, description: "How many dashboards the caller may see in all." },
        },
      },
      DeletedEnvelope: {
        type: "object",
        required: ["success", "message"],
        additionalProperties: false,
        properties: { success: { const: true }, message: { const: "Dashboard deleted successfully" } },
      },
      IframeTokenEnvelope: {
        type: "object",
        required: ["success", "data"],
        additionalProperties: false,
        properties: {
          success: { const: true },
          data: {
            type: "object",
            required: ["token", "dashboard_id", "expires_at", "token_id"],
            additionalProperties: false,
            properties: {
              token: { type: "string", description: "A compact JWS (EdDSA)." },
              dashboard_id: { type: "string" },
              expires_at: { type: "integer", description: "Unix seconds; the token's exp claim." },
              token_id: { type: "string", description: "The token's jti, to revoke it by." },
            },
          },
        },
      },
      ErrorEnvelope: {
        type: "object",
        required: ["success", "error", "code"],
        additionalProperties: false,
        properties: {
          success: { const: false },
          error: { type: "string", description: "What went wrong, for people; never SQL or stack traces." },
          code: {
            description: "The ErrorInfo reason of the error registry (README, Errors).",
            enum: Object.keys(REASONS),
          },
        },
      },
    },
    responses: {
      Unauthorized: errorResponse("No, an invalid or an expired bearer token (code UNAUTHORIZED)."),
      Forbidden: errorResponse("The caller may not use this tenant (code FORBIDDEN)."),
      NotFound: errorResponse("No such dashboard in the caller's organization, or no such route (code NOT_FOUND)."),
      ValidationError: errorResponse("A field, parameter or the JSON body is invalid (code VALIDATION_ERROR)."),
      AlreadyExists: errorResponse("The tenant already has a dashboard (code ALREADY_EXISTS)."),
      PayloadTooLarge: errorResponse("The body exceeds MAX_REQUEST_BYTES (code MESSAGE_TOO_LARGE)."),
      RateLimited: errorResponse(
        "Over a rate limit (code RATE_LIMITED).",
        retryAfter("Seconds until a retry may succeed."),
      ),
      ServerError: errorResponse("An unexpected failure; the cause is logged, never sent (code SERVER_ERROR)."),
      Unavailable: errorResponse(
        "The database is unreachable (code UNAVAILABLE), the replica is shutting down (SHUTTING_DOWN) or holds as " +
          "many request bytes as it may (OVERLOADED); retry.",
        retryAfter("Seconds until a retry may succeed."),
      ),
      DeadlineExceeded: errorResponse(
        "The call took longer than its deadline (RPC_DEFAULT_TIMEOUT_SECONDS); whatever it had begun was rolled back " +
          "(code DEADLINE_EXCEEDED).",
      ),
    },
  },
} as const;
