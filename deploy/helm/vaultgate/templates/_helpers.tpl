{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "vaultgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object names: <release>-vaultgate, or the release name when it already says vaultgate. */}}
{{- define "vaultgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vaultgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels the Deployment selects its pods by; never change them in an upgrade (selectors are immutable). */}}
{{- define "vaultgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vaultgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vaultgate.labels" -}}
helm.sh/chart: {{ include "vaultgate.chart" . }}
{{ include "vaultgate.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: secret-provider
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "vaultgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vaultgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "vaultgate.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "vaultgate.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "vaultgate.fullname" .)) .Values.policy.existingConfigMap }}
{{- end }}

{{- define "vaultgate.scheme" -}}
{{- if .Values.tls.existingSecret }}https{{ else }}http{{ end }}
{{- end }}

{{/*
VAULTGATE_WORKERS: whole cores of the CPU limit (else the request), at least 1 and
at most vaultgate's 64; the same floor vaultgate applies to its cgroup quota, so
the chart and the process agree. Empty when neither is set (vaultgate then
counts the node's CPUs).
*/}}
{{- define "vaultgate.workers" -}}
{{- if .Values.workers }}
{{- .Values.workers | int }}
{{- else }}
{{- $cpu := "" }}
{{- with .Values.resources }}
{{- with .requests }}{{ with .cpu }}{{ $cpu = toString . }}{{ end }}{{ end }}
{{- with .limits }}{{ with .cpu }}{{ $cpu = toString . }}{{ end }}{{ end }}
{{- end }}
{{- if $cpu }}
{{- $cores := 0 }}
{{- if hasSuffix "m" $cpu }}
{{- $cores = div (trimSuffix "m" $cpu | atoi) 1000 }}
{{- else }}
{{- $cores = floor (float64 $cpu) | int }}
{{- end }}
{{- max 1 (min 64 $cores) }}
{{- end }}
{{- end }}
{{- end }}

{{/* "true" once the essentials are given; the unconfigured defaults still render. */}}
{{- define "vaultgate.configured" -}}
{{- if or .Values.vault.addr .Values.oidc.issuers .Values.oidc.audiences }}true{{ end }}
{{- end }}

{{/* The Redis topology: single, sentinel, cluster, or empty (no Redis: the cache stays in each process). */}}
{{- define "vaultgate.redisMode" -}}
{{- with .Values.redis }}
{{- if .sentinels }}sentinel{{ else if .clusterNodes }}cluster{{ else if or .url .existingSecret }}single{{ end }}
{{- end }}
{{- end }}

{{/*
A volume holding one key of a ConfigMap or a Secret, for a file vaultgate reads: (list name ref), ref
with configMapName or secretName, and key.
*/}}
{{- define "vaultgate.fileVolume" -}}
{{- $ref := index . 1 -}}
- name: {{ index . 0 }}
  {{- with get $ref "configMapName" }}
  configMap:
    name: {{ . }}
  {{- else }}
  secret:
    secretName: {{ $ref.secretName }}
  {{- end }}
    items:
      - key: {{ $ref.key }}
        path: {{ $ref.key }}
{{- end }}

{{/* "true" when a CA (or key) reference names a ConfigMap or a Secret. */}}
{{- define "vaultgate.fileSet" -}}
{{- if or (get . "configMapName") (get . "secretName") }}true{{ end }}
{{- end }}

{{/* The policy files: the chart's values, null entries dropped. */}}
{{- define "vaultgate.policyFiles" -}}
{{- $files := dict }}
{{- range $name, $content := .Values.policy.files }}
{{- if not (kindIs "invalid" $content) }}
{{- $_ := set $files $name $content }}
{{- end }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/*
Cross-field rules the schema states less clearly; each failure names the value
to set. Included by the Deployment, so `helm template` and `helm install` stop.
*/}}
{{- define "vaultgate.validate" -}}
{{- $v := .Values.vault }}
{{- /* Defaults render (to read, lint and diff); once any of these is set, all are required. */}}
{{- if or $v.addr .Values.oidc.issuers .Values.oidc.audiences }}
{{- if not $v.addr }}
{{- fail "vault.addr: set Vault's address, e.g. https://vault.vault.svc:8200" }}
{{- end }}
{{- if not .Values.oidc.issuers }}
{{- fail "oidc.issuers: list the issuers to trust, e.g. https://api.bitbucket.org/2.0/workspaces/<workspace>/pipelines-config/identity/oidc" }}
{{- end }}
{{- if not .Values.oidc.audiences }}
{{- fail "oidc.audiences: list the audiences to accept, e.g. ari:cloud:bitbucket::workspace/<workspace-uuid>" }}
{{- end }}
{{- end }}
{{- if and (has $v.authMethod (list "token" "approle")) (not $v.existingSecret) (include "vaultgate.configured" .) }}
{{- fail (printf "vault.existingSecret: vault.authMethod %s reads its credentials from a Secret you create; set vault.existingSecret to its name (or use vault.authMethod kubernetes)" $v.authMethod) }}
{{- end }}
{{- if and (has $v.authMethod (list "kubernetes" "jwt")) (not $v.role) }}
{{- fail (printf "vault.role: vault.authMethod %s needs the Vault role to log in as" $v.authMethod) }}
{{- end }}
{{- if and $v.caCert.configMapName $v.caCert.secretName }}
{{- fail "vault.caCert: set configMapName or secretName, not both" }}
{{- end }}
{{- $redis := .Values.redis }}
{{- $redisMode := include "vaultgate.redisMode" . }}
{{- if contains "@" $redis.url }}
{{- fail "redis.url: holds a password (user info before @); put the whole URL in a Secret and name it in redis.existingSecret" }}
{{- end }}
{{- if gt (len (compact (list $redis.url (join "," $redis.sentinels) (join "," $redis.clusterNodes)))) 1 }}
{{- fail "redis: set one of redis.url (one node), redis.sentinels (a Sentinel group) or redis.clusterNodes (a Cluster)" }}
{{- end }}
{{- if and $redis.url $redis.existingSecret }}
{{- fail "redis: set redis.url or redis.existingSecret, not both (for a single node the Secret holds the whole URL)" }}
{{- end }}
{{- if and $redis.sentinels (not $redis.sentinelMaster) }}
{{- fail "redis.sentinelMaster: required with redis.sentinels; the name the sentinels monitor the master by, e.g. mymaster" }}
{{- end }}
{{- if and $redis.sentinelMaster (not $redis.sentinels) }}
{{- fail "redis.sentinelMaster: only used with redis.sentinels; list the sentinels or remove it" }}
{{- end }}
{{- if and $redis.sentinelPasswordKey (not (and $redis.sentinels $redis.existingSecret)) }}
{{- fail "redis.sentinelPasswordKey: the sentinels' password is read from redis.existingSecret with redis.sentinels; set both or remove it" }}
{{- end }}
{{- if not (has $redisMode (list "sentinel" "cluster")) }}
{{- if $redis.username }}
{{- fail "redis.username: only used with redis.sentinels or redis.clusterNodes; a single node's login goes in its URL (in redis.existingSecret)" }}
{{- end }}
{{- if $redis.tls }}
{{- fail "redis.tls: only used with redis.sentinels or redis.clusterNodes; a single node gets TLS from a rediss:// URL" }}
{{- end }}
{{- end }}
{{- if and $redis.caCert.configMapName $redis.caCert.secretName }}
{{- fail "redis.caCert: set configMapName or secretName, not both" }}
{{- end }}
{{- if and (include "vaultgate.fileSet" $redis.caCert) (not (or $redis.tls (and (eq $redisMode "single") (or $redis.existingSecret (hasPrefix "rediss://" $redis.url))))) }}
{{- fail "redis.caCert: only used with TLS; set redis.tls=true (with redis.sentinels or redis.clusterNodes) or use a rediss:// URL" }}
{{- end }}
{{- if and $redisMode (not .Values.cache.existingSecret) }}
{{- fail "cache.existingSecret: with Redis, vaultgate seals cached secrets with VAULTGATE_CACHE_KEY; create a Secret holding `openssl rand -base64 32` and name it here" }}
{{- end }}
{{- if and (not $redisMode) .Values.cache.existingSecret }}
{{- fail "cache.existingSecret: VAULTGATE_CACHE_KEY is used only with Redis; set redis.url, redis.existingSecret, redis.sentinels or redis.clusterNodes, or remove it" }}
{{- end }}
{{- $bundle := .Values.policy.bundle }}
{{- if $bundle.url }}
{{- if .Values.policy.existingConfigMap }}
{{- fail "policy.bundle.url and policy.existingConfigMap: the policy comes from a bundle server or from a ConfigMap, not both; clear one of them" }}
{{- end }}
{{- if and (include "vaultgate.fileSet" $bundle.caCert) (not (hasPrefix "https://" $bundle.url)) }}
{{- fail "policy.bundle.caCert: only used with an https:// policy.bundle.url" }}
{{- end }}
{{- if and (hasPrefix "HS" $bundle.signingAlg) $bundle.verificationKey.configMapName }}
{{- fail (printf "policy.bundle.verificationKey: with %s the key is an HMAC secret; keep it in a Secret (secretName), not a ConfigMap" $bundle.signingAlg) }}
{{- end }}
{{- if and (not (kindIs "invalid" $bundle.pollMinSeconds)) (not (kindIs "invalid" $bundle.pollMaxSeconds)) (gt (int $bundle.pollMinSeconds) (int $bundle.pollMaxSeconds)) }}
{{- fail "policy.bundle.pollMinSeconds: must not exceed policy.bundle.pollMaxSeconds" }}
{{- end }}
{{- else }}
{{- range $name, $set := dict "token.secretName" $bundle.token.secretName "caCert" (include "vaultgate.fileSet" $bundle.caCert) "verificationKey" (include "vaultgate.fileSet" $bundle.verificationKey) "keyId" $bundle.keyId "scope" $bundle.scope "signingAlg" $bundle.signingAlg "pollMinSeconds" (not (kindIs "invalid" $bundle.pollMinSeconds)) "pollMaxSeconds" (not (kindIs "invalid" $bundle.pollMaxSeconds)) }}
{{- if $set }}
{{- fail (printf "policy.bundle.%s: only used with policy.bundle.url; set the bundle's URL or remove it" $name) }}
{{- end }}
{{- end }}
{{- if and (not .Values.policy.existingConfigMap) (eq (include "vaultgate.policyFiles" .) "{}") }}
{{- fail "policy.files: no policy; give policy.files, policy.existingConfigMap or policy.bundle.url" }}
{{- end }}
{{- end }}
{{- range $field := list "caCert" "verificationKey" }}
{{- $ref := index $bundle $field }}
{{- if and $ref.configMapName $ref.secretName }}
{{- fail (printf "policy.bundle.%s: set configMapName or secretName, not both" $field) }}
{{- end }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if and .enabled (not (kindIs "invalid" .minAvailable)) (not (kindIs "invalid" .maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add 10 (int .Values.preStopSleepSeconds)) }}
{{- fail (printf "terminationGracePeriodSeconds: must exceed preStopSleepSeconds (%d) plus vaultgate's 10 s drain of requests in flight" (int .Values.preStopSleepSeconds)) }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if and (has .name (list "VAULT_TOKEN" "VAULT_ROLE_ID" "VAULT_SECRET_ID" "VAULTGATE_CACHE_KEY" "REDIS_URL" "REDIS_PASSWORD" "REDIS_SENTINEL_PASSWORD")) (hasKey . "value") }}
{{- fail (printf "extraEnv: %s is a credential; give it as valueFrom.secretKeyRef, or use the chart's vault/redis/cache existingSecret values" .name) }}
{{- end }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- $r := .Values.networkPolicy.runners }}
{{- if and (not $r.namespaceSelector) (not $r.podSelector) (not $r.ipBlocks) }}
{{- fail "networkPolicy.runners: give a namespaceSelector, a podSelector or ipBlocks; with none the policy would admit no runner" }}
{{- end }}
{{- end }}
{{- end }}
