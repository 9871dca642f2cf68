# syntax=docker/dockerfile:1
# vaultgate: build with dev dependencies, run with production ones only, as a non-root user.

FROM openpolicyagent/opa:1.22.3-static AS opa

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts wait: `prepare` builds, and the sources are not copied yet.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    VAULTGATE_LISTEN=0.0.0.0:8080 \
    VAULTGATE_POLICY_DIR=/policies \
    VAULTGATE_OPA_PATH=/usr/local/bin/opa
WORKDIR /app
# OPA compiles the policy when no current prebuilt bundle is in the policy directory.
COPY --from=opa /opa /usr/local/bin/opa
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY --chown=node:node policies /policies
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/vaultgate.js"]
CMD ["serve"]
