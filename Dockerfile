# syntax=docker/dockerfile:1
# One image for every tether component; the sub-command picks the part:
#   tether ca serve | controller serve | injector serve | proxy | proxy-init
# Built in three stages: production dependencies are installed apart, the CLI is compiled to
# JavaScript apart (scripts/build.mjs, esbuild), and the runtime stage holds neither the npm cache,
# dev dependencies, build tools nor the TypeScript sources: it runs dist/tether.mjs with plain node.
ARG NODE_IMAGE=node:20.19-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The package's `prepare` script is the build, which needs the sources: it runs in the next stage.
RUN npm pkg delete scripts.prepare \
 && npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
# dist/: the compiled CLI. The code finds some files beside its sources (the .proto files, the
# dashboard's static files): keep those, drop the TypeScript.
RUN node scripts/build.mjs \
 && find src -name '*.ts' -delete

FROM ${NODE_IMAGE} AS runtime
# iptables is for `tether proxy-init` (the init container, the only part that runs as root).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY --from=build /app/src ./src
COPY deploy/crds ./deploy/crds
# Non-root by default; the injector sets uid 2102 for the proxy and root only for tether-init.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/tether.mjs"]
CMD ["--help"]
