{{/* The labels every object of the release carries and selects on. */}}
{{- define "podinfo.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
