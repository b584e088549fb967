# syntax=docker/dockerfile:1
# One image for every tether component; the sub-command picks the part:
#   tether ca serve | controller serve | injector serve | proxy | proxy-init
# Built in two stages: production dependencies are installed apart, so the runtime stage holds
# no npm cache, no dev dependencies and no build tools.
ARG NODE_IMAGE=node:20.19-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# iptables is for `tether proxy-init` (the init container, the only part that runs as root).
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Containers run with a read-only root filesystem: tsx must not try to write its cache.
ENV NODE_ENV=production \
    TSX_DISABLE_CACHE=1
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY deploy/crds ./deploy/crds
# Non-root by default; the injector sets uid 2102 for the proxy and root only for tether-init.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/tether.mjs"]
CMD ["--help"]
