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
{{- if contains "@" .Values.redis.url }}
{{- fail "redis.url: holds a password (user info before @); put the whole URL in a Secret and name it in redis.existingSecret" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "redis: set redis.url or redis.existingSecret, not both" }}
{{- end }}
{{- if and (or .Values.redis.url .Values.redis.existingSecret) (not .Values.cache.existingSecret) }}
{{- fail "cache.existingSecret: with Redis, vaultgate seals cached secrets with VAULTGATE_CACHE_KEY; create a Secret holding `openssl rand -base64 32` and name it here" }}
{{- end }}
{{- if and (not .Values.redis.url) (not .Values.redis.existingSecret) .Values.cache.existingSecret }}
{{- fail "cache.existingSecret: VAULTGATE_CACHE_KEY is used only with Redis; set redis.url or redis.existingSecret, or remove it" }}
{{- end }}
{{- if and (not .Values.policy.existingConfigMap) (eq (include "vaultgate.policyFiles" .) "{}") }}
{{- fail "policy.files: no policy; give policy.files or policy.existingConfigMap" }}
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
{{- if and (has .name (list "VAULT_TOKEN" "VAULT_ROLE_ID" "VAULT_SECRET_ID" "VAULTGATE_CACHE_KEY" "REDIS_URL")) (hasKey . "value") }}
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
