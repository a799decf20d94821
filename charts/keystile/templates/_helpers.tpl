{{- /* Names. Object names are <fullname>-<part>: fullname stops at 48 characters so every name fits in 63. */}}
{{- define "keystile.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 48 | trimSuffix "-" }}
{{- end }}

{{- define "keystile.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keystile.operator.fullname" -}}
{{- printf "%s-operator" (include "keystile.fullname" .) }}
{{- end }}

{{- /* The operator's Lease (KEYSTILE_LEASE_NAME), the one its Role may get and update. */}}
{{- define "keystile.operator.leaseName" -}}
{{- default (include "keystile.operator.fullname" .) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{- define "keystile.gateway.fullname" -}}
{{- printf "%s-gateway" (include "keystile.fullname" .) }}
{{- end }}

{{- define "keystile.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "keystile.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name: name the ServiceAccount to use when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "keystile.gateway.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "keystile.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- required "gateway.serviceAccount.name: name the ServiceAccount to use when gateway.serviceAccount.create is false" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* Labels. */}}
{{- define "keystile.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keystile.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "keystile.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "keystile.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keystile
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- /* An image reference: (dict "image" <values.image> "root" $). The tag defaults to the appVersion. */}}
{{- define "keystile.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{- /*
The security contexts every pod and container of the chart runs with: podSecurityContext and
containerSecurityContext (Helm merges what is set over their defaults, and drops a key set to null).
*/}}
{{- define "keystile.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "keystile.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}

{{- /* Pod placement: (dict "v" <values of the part>). */}}
{{- define "keystile.placement" -}}
{{- with .v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{- /*
Counters. How many enforcers serve the same plans: the gateway's replicas and the sidecars the user
says they run. auto chooses redis as soon as there is more than one: several enforcers each counting in
memory would each grant the whole quota.
*/}}
{{- define "keystile.enforcerCount" -}}
{{- $n := int .Values.counters.sidecarEnforcers }}
{{- if .Values.gateway.enabled }}
{{- $n = add $n (int .Values.gateway.replicas) }}
{{- end }}
{{- $n }}
{{- end }}

{{- define "keystile.counterStore" -}}
{{- if eq .Values.counters.store "auto" }}
{{- if gt (int (include "keystile.enforcerCount" .)) 1 }}redis{{ else }}memory{{ end }}
{{- else }}
{{- .Values.counters.store }}
{{- end }}
{{- end }}

{{- /* The claim holding the gateway's counters (counters.persistence). */}}
{{- define "keystile.gateway.countersClaim" -}}
{{- default (printf "%s-counters" (include "keystile.gateway.fullname" .)) .Values.counters.persistence.existingClaim }}
{{- end }}

{{- /* Which Redis is given: url, cluster, sentinel or none. */}}
{{- define "keystile.redisKind" -}}
{{- $r := .Values.counters.redis }}
{{- if $r.url }}url{{ else if $r.clusterNodes }}cluster{{ else if $r.sentinels }}sentinel{{ else }}none{{ end }}
{{- end }}

{{- /* The gateway's admin Service, which the operator polls for usage with the memory store. */}}
{{- define "keystile.gateway.adminHost" -}}
{{- printf "%s-admin.%s.svc.%s" (include "keystile.gateway.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{- /*
Checks the values that the schema cannot: run once, from the operator's Deployment. Each message says
what to change.
*/}}
{{- define "keystile.validate" -}}
{{- if and (not .Values.operator.leaderElection.enabled) (gt (int .Values.operator.replicas) 1) }}
{{- fail "operator.leaderElection.enabled is false: run one replica (operator.replicas=1), or two replicas would both write" }}
{{- end }}
{{- /*
The leader stops writing when it has not renewed for 0.8 x the Lease's duration (operator/src/kube/lease.ts,
renewDeadlineMs), and renews every renewSeconds: a renewal must come before that deadline, or the
leader drops its leadership every cycle.
*/}}
{{- $le := .Values.operator.leaderElection }}
{{- if and $le.enabled (ge (mul (int $le.renewSeconds) 10) (mul (int $le.leaseDurationSeconds) 8)) }}
{{- fail (printf "operator.leaderElection: renewSeconds (%d) must be under 0.8 x leaseDurationSeconds (%d), the time after which the leader stops writing unrenewed; or it would drop the Lease every cycle. Lower renewSeconds or raise leaseDurationSeconds (e.g. 5 and 15)" (int $le.renewSeconds) (int $le.leaseDurationSeconds)) }}
{{- end }}
{{- $r := .Values.counters.redis }}
{{- $given := 0 }}
{{- if $r.url }}{{ $given = add1 $given }}{{ end }}
{{- if $r.clusterNodes }}{{ $given = add1 $given }}{{ end }}
{{- if $r.sentinels }}{{ $given = add1 $given }}{{ end }}
{{- if gt $given 1 }}
{{- fail "counters.redis: give one of url, clusterNodes and sentinels, not several" }}
{{- end }}
{{- $store := include "keystile.counterStore" . }}
{{- if and (eq $store "redis") (eq $given 0) }}
{{- if eq .Values.counters.store "auto" }}
{{- fail (printf "counters.store is auto and %s enforcers serve the same plans (gateway.replicas and counters.sidecarEnforcers), so their counters must be shared: set counters.redis.url (or clusterNodes, or sentinels). To let each enforcer count alone, and each grant the whole quota, set counters.store=memory." (include "keystile.enforcerCount" .)) }}
{{- else }}
{{- fail "counters.store is redis: set counters.redis.url (or clusterNodes, or sentinels)" }}
{{- end }}
{{- end }}
{{- if .Values.counters.persistence.enabled }}
{{- if not .Values.gateway.enabled }}
{{- fail "counters.persistence keeps the gateway's counters: enable the gateway (gateway.enabled), or turn persistence off" }}
{{- end }}
{{- if ne $store "memory" }}
{{- fail (printf "counters.persistence keeps the memory store's counters, and the store is %s: turn persistence off (Redis keeps them)" $store) }}
{{- end }}
{{- if gt (int .Values.gateway.replicas) 1 }}
{{- fail "counters.persistence: one claim holds one enforcer's counters; run gateway.replicas=1, or several replicas on Redis" }}
{{- end }}
{{- end }}
{{- if .Values.gateway.enabled }}
{{- if not .Values.gateway.stages }}
{{- fail "gateway.enabled: list the API stages it serves in gateway.stages, e.g. [{api: orders, stage: prod, port: 8080}]" }}
{{- end }}
{{- if not (or .Values.gateway.upstream.service .Values.gateway.upstream.host) }}
{{- fail "gateway.enabled: name the Service behind it in gateway.upstream.service (or gateway.upstream.host)" }}
{{- end }}
{{- /* The operator renders the stages' objects only in the namespaces it watches. */}}
{{- $gatewayNs := include "keystile.gateway.watchNamespace" . }}
{{- if and .Values.operator.watchNamespaces (not (has $gatewayNs .Values.operator.watchNamespaces)) }}
{{- fail (printf "the gateway watches the namespace %s (gateway.watchNamespace, default: the release namespace), which the operator does not watch (operator.watchNamespaces: %s): nothing would render its stages. Add %s to operator.watchNamespaces, or watch one of those" $gatewayNs (join ", " .Values.operator.watchNamespaces) $gatewayNs) }}
{{- end }}
{{- $ports := dict }}
{{- $e := .Values.gateway.enforcer.ports }}
{{- $taken := list (int $e.http) (int $e.grpc) (int $e.admin) (int .Values.gateway.envoy.adminPort) }}
{{- if ne (len (uniq $taken)) 4 }}
{{- fail "gateway: the enforcer's http, grpc and admin ports and Envoy's adminPort must differ" }}
{{- end }}
{{- range .Values.gateway.stages }}
{{- $key := printf "%s/%s" .api .stage }}
{{- if hasKey $ports $key }}
{{- fail (printf "gateway.stages: %s is listed twice" $key) }}
{{- end }}
{{- $_ := set $ports $key true }}
{{- if has (int .port) $taken }}
{{- fail (printf "gateway.stages: port %d of %s is taken by another stage or by the enforcer or Envoy's admin" (int .port) $key) }}
{{- end }}
{{- $taken = append $taken (int .port) }}
{{- end }}
{{- $servicePorts := list }}
{{- range .Values.gateway.stages }}
{{- $p := int (default .port .servicePort) }}
{{- if has $p $servicePorts }}
{{- fail (printf "gateway.stages: the Service port %d of %s/%s is another stage's too" $p .api .stage) }}
{{- end }}
{{- $servicePorts = append $servicePorts $p }}
{{- end }}
{{- /*
The enforcer's Role names every object its stages may have (an index, and a keys and a secrets shard
for each of maxShards): about (api + stage + 30) bytes a name. Over a megabyte the API server (etcd's
request limit) would refuse the Role at install, after the rest was made.
*/}}
{{- $roleBytes := 0 }}
{{- range .Values.gateway.stages }}
{{- $roleBytes = add $roleBytes (mul (add1 (mul 2 (int $.Values.gateway.maxShards))) (add (len .api) (len .stage) 30)) }}
{{- end }}
{{- if gt (int $roleBytes) 1000000 }}
{{- fail (printf "gateway: its Role would name %d objects (about %d kB), more than the API server stores in one object: lower gateway.maxShards (%d; each shard holds 2,000 keys) or serve fewer stages in one release" (mul (len .Values.gateway.stages) (add1 (mul 2 (int .Values.gateway.maxShards)))) (div $roleBytes 1000) (int .Values.gateway.maxShards)) }}
{{- end }}
{{- end }}
{{- end }}
