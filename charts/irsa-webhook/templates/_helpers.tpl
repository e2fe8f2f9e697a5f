{{/*
The objects keep fixed names: the webhook is one per cluster (its
MutatingWebhookConfiguration and ClusterRoles are cluster-scoped), and the
names are what docs/install.md and the serving certificate refer to.
*/}}

{{- define "irsa.labels" -}}
app.kubernetes.io/name: irsa-webhook
app.kubernetes.io/component: {{ . }}
app.kubernetes.io/part-of: irsa-webhook
{{- end }}

{{- define "irsa.selectorLabels" -}}
app.kubernetes.io/name: irsa-webhook
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* The image, by digest when one is given (the tag then only documents it). */}}
{{- define "irsa.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end }}

{{/* The webhook Service's DNS name, which the serving certificate names. */}}
{{- define "irsa.serviceHost" -}}
irsa-webhook.{{ .Release.Namespace }}.svc
{{- end }}

{{/* Namespaces never sent to the webhook: its own first. */}}
{{- define "irsa.excludedNamespaces" -}}
{{- prepend .Values.webhook.excludedNamespaces .Release.Namespace | uniq | toJson -}}
{{- end }}

{{/* Container security context: restricted, read-only root, distroless nonroot. */}}
{{- define "irsa.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Pod placement and pull settings shared by both Deployments; the argument is
the component's values.
*/}}
{{- define "irsa.podPlacement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "irsa.pullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* GOMEMLIMIT from the memory limit, as the kubelet sees it. */}}
{{- define "irsa.gomemlimit" -}}
{{- if and .limits .limits.memory }}
# The Go runtime collects harder as the heap nears the container's
# memory limit instead of being killed at it.
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end }}
{{- end }}

{{/* The issuer URL's path, without a trailing slash: the documents' prefix. */}}
{{- define "irsa.issuerPath" -}}
{{- (urlParse .Values.discovery.issuer).path | trimSuffix "/" -}}
{{- end }}
