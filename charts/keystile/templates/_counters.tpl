{{- /*
The Redis settings, as environment variables: (dict "root" $ "vars" (dict "url" ... "cluster" ...
"sentinels" ... "sentinelName" ... "password" ... "sentinelPassword" ...)), the variable names of the
program that reads them.
The password comes from the existing Secret, never from values: it is set first, and a URL takes it
through Kubernetes' $(VAR) expansion, so it is never written in the pod spec: after the URL's user
(a Redis ACL user: redis://user:$(VAR)@host...), or alone (redis://:$(VAR)@host...). It must be in the
URL: the operator reads a URL's password from the URL only (operator/src/config.ts ignores its password
variable with a URL).
*/}}
{{- define "keystile.redisEnv" -}}
{{- $r := .root.Values.counters.redis }}
{{- $v := .vars -}}
{{- if $r.existingSecret }}
- name: {{ $v.password }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.existingSecretKey }}
{{- end }}
{{- if $r.url }}
{{- $url := $r.url }}
{{- $parts := splitn "://" 2 $r.url }}
{{- $user := regexFind "^[^/?#@]*@" $parts._1 }}
{{- /* A password in the URL would be written in clear in the pod spec (and the release's manifest). */}}
{{- if contains ":" $user }}
{{- if $r.existingSecret }}
{{- fail "counters.redis.url carries a password, and counters.redis.existingSecret gives one too: remove the password from the URL (keep the user, if any)" }}
{{- else }}
{{- fail "counters.redis.url carries a password, which would be written in clear in the pod spec: put it in a Secret, name it in counters.redis.existingSecret (and its key in counters.redis.existingSecretKey), and remove it from the URL (keep the user, if any)" }}
{{- end }}
{{- end }}
{{- if $r.existingSecret }}
{{- $url = printf "%s://%s:$(%s)@%s" $parts._0 (trimSuffix "@" $user) $v.password (trimPrefix $user $parts._1) }}
{{- end }}
- name: {{ $v.url }}
  value: {{ $url | quote }}
{{- else if $r.clusterNodes }}
- name: {{ $v.cluster }}
  value: {{ join "," $r.clusterNodes | quote }}
{{- else if $r.sentinels }}
- name: {{ $v.sentinels }}
  value: {{ join "," $r.sentinels | quote }}
- name: {{ $v.sentinelName }}
  value: {{ $r.sentinelName | quote }}
{{- if $r.existingSecretSentinelKey }}
{{- if not $r.existingSecret }}
{{- fail "counters.redis.existingSecretSentinelKey names a key of counters.redis.existingSecret: set that Secret too" }}
{{- end }}
- name: {{ $v.sentinelPassword }}
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.existingSecretSentinelKey }}
{{- end }}
{{- end }}
{{- end }}

{{- /* The operator reads usage from the Redis the enforcers count in (operator/src/config.ts). */}}
{{- define "keystile.operator.redisEnv" -}}
{{- include "keystile.redisEnv" (dict "root" . "vars" (dict
  "url" "KEYSTILE_USAGE_REDIS_URL"
  "cluster" "KEYSTILE_USAGE_REDIS_CLUSTER_NODES"
  "sentinels" "KEYSTILE_USAGE_REDIS_SENTINELS"
  "sentinelName" "KEYSTILE_USAGE_REDIS_SENTINEL_NAME"
  "password" "KEYSTILE_USAGE_REDIS_PASSWORD"
  "sentinelPassword" "KEYSTILE_USAGE_REDIS_SENTINEL_PASSWORD")) }}
{{- end }}

{{- /* The enforcer's store settings (enforcer/src/config.ts). */}}
{{- define "keystile.enforcer.storeEnv" -}}
{{- $store := include "keystile.counterStore" . -}}
- name: KEYSTILE_STORE
  value: {{ $store }}
{{- if eq $store "redis" }}
{{ include "keystile.redisEnv" (dict "root" . "vars" (dict
  "url" "KEYSTILE_REDIS_URL"
  "cluster" "KEYSTILE_REDIS_CLUSTER_NODES"
  "sentinels" "KEYSTILE_REDIS_SENTINELS"
  "sentinelName" "KEYSTILE_REDIS_SENTINEL_NAME"
  "password" "KEYSTILE_REDIS_PASSWORD"
  "sentinelPassword" "KEYSTILE_REDIS_SENTINEL_PASSWORD")) | trim }}
- name: KEYSTILE_REDIS_UNAVAILABLE
  value: {{ .Values.counters.redis.unavailable | quote }}
- name: KEYSTILE_REDIS_TIMEOUT
  value: {{ .Values.counters.redis.timeoutSeconds | quote }}
{{- else }}
- name: KEYSTILE_COUNTERS_FILE
  value: /var/lib/keystile/counters.ndjson
{{- end }}
{{- end }}
