# syntax=docker/dockerfile:1
# Production image: built in one stage, run from a slim one as the unprivileged
# `node` user, with only production dependencies. gen/ is committed, so the
# build needs no protobuf tooling.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    PORT=8080 \
    LOG_FORMAT=json
WORKDIR /app
COPY --from=production-dependencies --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# package.json marks the project root, where the server finds migrations/.
COPY --chown=root:root package.json ./
COPY --chown=root:root migrations ./migrations
# The official image's unprivileged user (uid 1000); the app files stay root-owned and read-only to it.
USER node
EXPOSE 8080
# Kubernetes uses its own probes (deploy/); this is for plain Docker.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the graceful shutdown (SHUTDOWN_GRACE_SECONDS); node runs as PID 1 and handles it itself.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
