# syntax=docker/dockerfile:1
#
# Ferry container image.
#
#   docker build -t ferry:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v ferry-data:/var/lib/ferry \
#     -v "$PWD/ferry.yaml:/etc/ferry/ferry.yaml:ro" -v "$PWD/keys:/etc/ferry/keys:ro" \
#     -p 8080:8080 ferry:0.1.0
#
# See docs/deployment.md. The Node major here must stay the one the project is developed and
# tested on (the `node` devDependency); test/packaging/dockerfile.test.ts checks it.

# Node.js release of both stages. Override with --build-arg NODE_VERSION=24.x.y; to pin the
# base image by digest as well, add "@sha256:<digest>" to the FROM lines below.
ARG NODE_VERSION=24.21.0

# ---------------------------------------------------------------------------------------------
# build: all dependencies (TypeScript is a devDependency) and the compiled dist/.
# ---------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src

# Dependencies first, so this layer is cached until the lockfile changes (and npm's download
# cache is a BuildKit cache mount, kept between builds but never in a layer). --ignore-scripts: no
# package needs an install script to build (the `node` devDependency's script only downloads a
# second Node binary, which the base image already provides).
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsc is called through the base image's node on purpose: node_modules/.bin/node (from the
# `node` devDependency) is not set up when install scripts are skipped.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && test -f dist/cli/main.js

# ---------------------------------------------------------------------------------------------
# production: compiled code, production dependencies, nothing else.
# ---------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS production

ENV NODE_ENV=production
WORKDIR /app

# GitOps write-back drives the git CLI (docs/gitops.md#git): git, ssh for SSH remotes, and the CA
# certificates that HTTPS remotes are verified against (the slim base image has none of them).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# Numeric, non-root user (10001) with no login shell, and the only directories Ferry writes to at
# run time: /var/lib/ferry (SQLite store, git working copies) and /tmp. It is also the user's HOME
# (see ENV HOME below), so HOME stays writable with a read-only root file system.
RUN groupadd --system --gid 10001 ferry \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ferry --no-create-home \
      --shell /usr/sbin/nologin ferry \
 && mkdir -p /var/lib/ferry /etc/ferry/keys \
 && chown 10001:10001 /var/lib/ferry \
 && chmod 0750 /var/lib/ferry

# Production dependencies only. better-sqlite3 ships prebuilt N-API binaries, so no install
# script (and no compiler) is needed; the build fails here if its binary does not load. npm's
# cache is a BuildKit cache mount: it never lands in the image.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && node -e "new (require('better-sqlite3'))(':memory:').close()"

COPY --from=build /src/dist ./dist
COPY openapi.yaml ./

# /var/lib/ferry holds the SQLite database: it must be writable, and with a read-only root
# file system it must be a volume. /tmp must be a tmpfs (docker run --tmpfs /tmp) or emptyDir.
# The configuration is mounted at /etc/ferry/ferry.yaml and the signing key under /etc/ferry/keys.
VOLUME ["/var/lib/ferry"]

# Set only here: earlier, the build's own npm (run as root) would use it for its cache.
ENV HOME=/var/lib/ferry
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM

# Liveness from inside the container, with node itself (the image has no curl or wget). Set
# FERRY_HEALTHCHECK_URL when server.listen is not port 8080.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.FERRY_HEALTHCHECK_URL || 'http://127.0.0.1:8080/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--config", "/etc/ferry/ferry.yaml"]
