{{- /* The namespace whose rendered objects the gateway's enforcer watches. */}}
{{- define "keystile.gateway.watchNamespace" -}}
{{- default .Release.Namespace .Values.gateway.watchNamespace }}
{{- end }}

{{- /* The upstream's DNS name: gateway.upstream.host, or the Service's cluster name. */}}
{{- define "keystile.gateway.upstreamHost" -}}
{{- $u := .Values.gateway.upstream }}
{{- if $u.host }}
{{- $u.host }}
{{- else }}
{{- printf "%s.%s.svc.%s" $u.service (default .Release.Namespace $u.namespace) .Values.clusterDomain }}
{{- end }}
{{- end }}

{{- /*
The request headers Envoy passes to the enforcer besides the defaults (keystile.envoy.defaultAllowedHeaders),
as a JSON list: gateway.allowedHeaders, then every header gateway.enforcer.keySource reads, as
`keystile inject` derives them (cli/src/inject-sidecars.ts) from the enforcer's parsing of --key-source
(enforcer/src/config.ts: comma-separated, trimmed, `header:<name>` case-insensitive, the name lower-cased).
`bearer` reads authorization, a default; a `query:<name>` is no header. Without this, a key in a custom
header never reaches the enforcer, and every request is denied for a missing key.
*/}}
{{- define "keystile.gateway.allowedHeaders" -}}
{{- $defaults := include "keystile.envoy.defaultAllowedHeaders" . | fromJsonArray }}
{{- $headers := list }}
{{- range .Values.gateway.allowedHeaders }}
{{- if not (or (has . $defaults) (has . $headers)) }}
{{- $headers = append $headers . }}
{{- end }}
{{- end }}
{{- range splitList "," .Values.gateway.enforcer.keySource }}
{{- $source := trim . }}
{{- if hasPrefix "header:" (lower $source) }}
{{- $name := substr 7 -1 $source | lower }}
{{- if not (or (has $name $defaults) (has $name $headers)) }}
{{- $headers = append $headers $name }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $headers }}
{{- end }}

{{- /* Envoy's bootstrap as YAML, from the generated keystile.envoy.http / keystile.envoy.grpc. */}}
{{- define "keystile.gateway.envoyConfig" -}}
{{- $g := .Values.gateway }}
{{- $ns := include "keystile.gateway.watchNamespace" . }}
{{- $listeners := list }}
{{- range $g.stages }}
{{- $listeners = append $listeners (dict "port" .port "stage" (printf "%s/%s/%s" $ns .api .stage)) }}
{{- end }}
{{- $args := dict
  "listeners" $listeners
  "listenHost" "0.0.0.0"
  "adminPort" $g.envoy.adminPort
  "upstreamHost" (include "keystile.gateway.upstreamHost" .)
  "upstreamPort" $g.upstream.port
  "httpPort" $g.enforcer.ports.http
  "grpcPort" $g.enforcer.ports.grpc
  "timeout" $g.timeout
  "allowedHeaders" (include "keystile.gateway.allowedHeaders" . | fromJsonArray) }}
{{- include (printf "keystile.envoy.%s" $g.extAuthz) $args | fromJson | toYaml }}
{{- end }}

{{- /*
The enforcer's preStop (Node: its image has no shell): asks Envoy's admin, on loopback, to start its
graceful drain (drain_listeners?graceful; Envoy drains on no signal, and its drain lasts --drain-time-s),
then exits after drainSeconds + enforcer.stopAfterEnvoySeconds, whether Envoy answered or not.
*/}}
{{- define "keystile.gateway.drainScript" -}}
{{- $g := .Values.gateway -}}
fetch('http://127.0.0.1:{{ $g.envoy.adminPort }}/drain_listeners?graceful', { method: 'POST', signal: AbortSignal.timeout(2000) }).catch(() => {}); setTimeout(() => process.exit(0), {{ mul (add $g.drainSeconds $g.enforcer.stopAfterEnvoySeconds) 1000 }});
{{- end }}

{{- /*
A curl of the port-forwarded gateway carrying $KEY where the enforcer reads it first: the first source
of gateway.enforcer.keySource (header:<name>, bearer, query:<name>; parsed as enforcer/src/config.ts's
parseKeySources does: comma-separated, blanks skipped, the kind in any case).
*/}}
{{- define "keystile.gateway.curlExample" -}}
{{- $first := "" }}
{{- range splitList "," .Values.gateway.enforcer.keySource }}
{{- if and (not $first) (trim .) }}{{ $first = trim . }}{{ end }}
{{- end }}
{{- $parts := splitn ":" 2 $first }}
{{- $kind := lower $parts._0 }}
{{- if eq $kind "bearer" -}}
curl -i -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/
{{- else if eq $kind "query" -}}
curl -i "http://127.0.0.1:8080/?{{ $parts._1 }}=$KEY"
{{- else -}}
curl -i -H "{{ $parts._1 }}: $KEY" http://127.0.0.1:8080/
{{- end }}
{{- end }}
