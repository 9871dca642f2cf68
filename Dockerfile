# syntax=docker/dockerfile:1
# vaultgate's image. The build stage packs the package (`npm pack`); the final
# stage installs that tarball with deploy/install.sh, production dependencies
# only, at the versions npm-shrinkwrap.json pins: the same script and tarball
# the test suite installs and runs (test/deploy/package.test.ts), so what is
# tested is what ships. test/deploy/dockerfile.test.ts holds this file to that.

FROM openpolicyagent/opa:1.22.3-static AS opa

FROM node:20-bookworm-slim AS pack
WORKDIR /src
COPY package.json npm-shrinkwrap.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json README.md ./
COPY bin ./bin
COPY src ./src
COPY policies ./policies
COPY examples ./examples
COPY deploy/systemd ./deploy/systemd
# prepack compiles src/ to dist/ first.
RUN npm pack --pack-destination /pkg

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    VAULTGATE_LISTEN=0.0.0.0:8080 \
    VAULTGATE_POLICY_DIR=/policies \
    VAULTGATE_OPA_PATH=/usr/local/bin/opa
# OPA compiles the policy in /policies at every start and reload: what runs is what was reviewed.
COPY --from=opa /opa /usr/local/bin/opa
COPY deploy/install.sh /tmp/install.sh
COPY --from=pack /pkg/ /tmp/pkg/
RUN sh /tmp/install.sh /tmp/pkg/vaultgate-*.tgz /opt/vaultgate && rm -rf /tmp/pkg /tmp/install.sh /root/.npm
COPY --chown=node:node policies /policies
WORKDIR /opt/vaultgate
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/opt/vaultgate/node_modules/.bin/vaultgate"]
CMD ["serve"]
