# syntax=docker/dockerfile:1.7
#
# The hoard container image: the `hoard` command with every driver and store, the PostgreSQL
# (several majors), MariaDB, SQLite and MongoDB client tools, running as a non-root user under tini.
#
# Build from the repository's root. The MongoDB Database Tools are built from the source archive in
# shared/third_party (beside the repository), given as a BuildKit named build context:
#
#   docker build --build-context mongo-tools=../shared/third_party -t hoard .
#   docker run --rm hoard --help
#
# See docs/install.md. apps/cli/test/dockerfile.test.ts checks this file's structure.

# Base images (override with --build-arg to use a mirror or pin a digest). Node.js 24 LTS on Debian 13;
# Go >= 1.26.5 for the MongoDB tools.
ARG NODE_IMAGE=docker.io/library/node:24-trixie-slim
ARG GO_IMAGE=docker.io/library/golang:1.26-trixie

# --- mongodump and mongorestore, built offline from the vendored source archive -----------------
# (The stage has its own name: a named build context replaces a stage of the same name.)
FROM ${GO_IMAGE} AS mongo-tools-build
COPY --from=mongo-tools build-mongo-tools.sh mongo-tools-*.tar.gz /src/
RUN bash /src/build-mongo-tools.sh /out

# --- the workspace built and packed as it would be published ----------------------------------
FROM ${NODE_IMAGE} AS build
ARG PNPM_VERSION=10.34.8
RUN npm install --global --no-audit --no-fund "pnpm@${PNPM_VERSION}"
WORKDIR /src
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json ./
COPY packages ./packages
COPY apps ./apps
COPY scripts/pack-packages.sh ./scripts/
RUN pnpm install --frozen-lockfile \
 && pnpm --recursive --filter "./packages/*" --filter "./apps/*" run build \
 && bash scripts/pack-packages.sh /packs

# --- hoard installed from the tarballs with plain npm, as users install it ---------------------
FROM ${NODE_IMAGE} AS install
COPY --from=build /packs /packs
WORKDIR /opt/hoard
RUN echo '{"name":"hoard-image","private":true}' > package.json \
 && npm install --omit=dev --no-audit --no-fund --no-package-lock /packs/*.tgz \
 && npm cache clean --force

# --- the image ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# PostgreSQL client majors from the PostgreSQL project's apt repository (its signing key ships in
# Debian's postgresql-common): hoard picks the pg_dump that matches the server's major. With
# POSTGRESQL_CLIENT_MAJORS="" only Debian's own postgresql-client is installed (17 on Debian 13: its
# dumps do not restore into PostgreSQL 16 and older). The apt caches go (the base image may not clean
# them itself). npm, corepack and yarn are removed: hoard does not need them to run, so there is
# less to patch and to exploit (they stay in the base image's layer: no size is saved).
ARG POSTGRESQL_CLIENT_MAJORS="18 17 16 15 14"
RUN set -eu \
 && apt-get update \
 && apt-get install --yes --no-install-recommends ca-certificates postgresql-common \
 && if [ -n "${POSTGRESQL_CLIENT_MAJORS}" ]; then \
      /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y; \
      postgresql_clients=$(for major in ${POSTGRESQL_CLIENT_MAJORS}; do printf 'postgresql-client-%s ' "${major}"; done); \
    else \
      postgresql_clients=postgresql-client; \
    fi \
 && apt-get install --yes --no-install-recommends tini mariadb-client sqlite3 ${postgresql_clients} \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && groupadd --gid 10001 hoard \
 && useradd --uid 10001 --gid hoard --home-dir /home/hoard --create-home --shell /usr/sbin/nologin hoard
COPY --from=mongo-tools-build /out/mongodump /out/mongorestore /usr/local/bin/
COPY --from=install /opt/hoard /opt/hoard
ENV PATH="/opt/hoard/node_modules/.bin:${PATH}" \
    NODE_ENV=production
WORKDIR /home/hoard
# A numeric user, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# tini is PID 1: it forwards SIGTERM/SIGINT to hoard (which finishes or aborts a run cleanly and
# exits 143/130) and reaps the dump tools' processes.
ENTRYPOINT ["/usr/bin/tini", "--", "hoard"]
CMD ["--help"]
