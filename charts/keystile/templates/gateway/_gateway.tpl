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
  "allowedHeaders" $g.allowedHeaders }}
{{- include (printf "keystile.envoy.%s" $g.extAuthz) $args | fromJson | toYaml }}
{{- end }}
