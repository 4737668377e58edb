# syntax=docker/dockerfile:1
#
# gatehouse for AWS Fargate (or any container runtime): `gatehouse proxy`,
# the egress forward proxy, behind an internal NLB (PrivateLink).
#
#   docker build -t gatehouse .
#   docker run --init -p 3128:3128 -p 9090:9090 \
#     -v "$PWD/proxy.yaml:/etc/gatehouse/proxy.yaml:ro" gatehouse
#
# Ports: 3128 the proxy (NLB listener -> target group), 9090 health and
# /metrics (the NLB target group's health check). No HEALTHCHECK here: the
# NLB checks, and Fargate would only restart what the NLB already avoids.
# Signals: node runs as PID 1, which gets no default signal handling; on
# Fargate set `initProcessEnabled: true` in the container's linuxParameters
# (CDK: linuxParameters.initProcessEnabled), elsewhere `docker run --init`,
# so SIGTERM on scale-in reaches the proxy and it can drain.

# ---- build: TypeScript -> dist/, the N-API addon -> build/Release/gatehouse.node
FROM node:22-bookworm AS build
WORKDIR /src
# Node's headers ship in the image (/usr/local/include/node): node-gyp needs no download.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
# Dependencies first (a cached layer while only sources change); no package needs install scripts
# except ours, which runs below once the sources are there.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY binding.gyp tsconfig.json ./
COPY native ./native
COPY src ./src
RUN npm run build:native && npm run build && test -f build/Release/gatehouse.node && test -f dist/src/cli/main.js

# ---- production dependencies only (pure JavaScript: yaml, prom-client, node-addon-api headers)
FROM node:22-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system --gid 10001 gatehouse \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gatehouse
# Owned by root and only readable by the proxy's user: it cannot change its own code.
# package.json: `gatehouse --version` reads it (dist/src/cli/main.js -> ../../../package.json).
COPY --from=deps /src/package.json ./package.json
COPY --from=deps /src/node_modules ./node_modules
# dist/src/native/addon.js loads ../../../build/Release/gatehouse.node.
COPY --from=build /src/build/Release/*.node ./build/Release/
COPY --from=build /src/dist/src ./dist/src
USER 10001:10001
EXPOSE 3128 9090
ENTRYPOINT ["node", "dist/src/cli/main.js", "proxy"]
# Defaults for a container behind an NLB; the task definition's `command` replaces them.
CMD ["--policy", "/etc/gatehouse/proxy.yaml", "--listen", "0.0.0.0:3128", "--health-port", "9090"]
