{{/* The chart's name, or nameOverride. */}}
{{- define "hoard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: fullnameOverride, or <release>-<chart> (just <release> when it holds the chart's name). */}}
{{- define "hoard.fullname" -}}
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

{{- define "hoard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hoard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hoard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hoard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hoard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hoard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hoard.image" -}}
{{- $repository := required "image.repository: set it to where you pushed the image built from hoard's Dockerfile (see docs/install.md)" .Values.image.repository }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
hoard.refuseCredentials: fails the rendering when a text holds a URL with a password
(scheme://user:password@host). Secrets belong in Kubernetes Secrets, reached through
secretEnv/envFrom, never in arguments (visible in `ps` and the API) or plain values. A user name
alone is no secret, and a password that is a ${VAR} reference (hoard run's config) is allowed.
Call with (list "where" "text").
*/}}
{{- define "hoard.refuseCredentials" -}}
{{- $where := index . 0 }}
{{- $text := toString (index . 1) }}
{{- range $match := regexFindAll "[A-Za-z][A-Za-z0-9+.-]*://[^/@\\s\"']*@" $text -1 }}
{{- $userinfo := regexReplaceAll "^[A-Za-z][A-Za-z0-9+.-]*://(.*)@$" $match "${1}" }}
{{- if and (contains ":" $userinfo) (not (regexMatch "^[^:]*:\\$\\{[^}]+\\}$" $userinfo)) }}
{{- fail (printf "%s holds a URL with a password: put it in a Kubernetes Secret and use secretEnv (e.g. HOARD_DATABASE_URL), or a ${VAR} reference in run.config" $where) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
hoard.env: the container's env list from the shared and the job's own env/secretEnv.
Call with (dict "root" $ "where" "jobs.shop" "env" $job.env "secretEnv" $job.secretEnv).
*/}}
{{- define "hoard.env" -}}
{{- $env := merge (dict) (default (dict) .env) (default (dict) .root.Values.env) }}
{{- $secretEnv := merge (dict) (default (dict) .secretEnv) (default (dict) .root.Values.secretEnv) }}
{{- range $name := keys $env | sortAlpha }}
{{- include "hoard.refuseCredentials" (list (printf "%s.env.%s" $.where $name) (get $env $name)) }}
{{- if hasKey $secretEnv $name }}
{{- fail (printf "%s: %s is in both env and secretEnv" $.where $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ get $env $name | toString | quote }}
{{- end }}
{{- range $name := keys $secretEnv | sortAlpha }}
{{- $ref := get $secretEnv $name }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.secretEnv.%s.secret: the Secret's name" $.where $name) $ref.secret | quote }}
      key: {{ required (printf "%s.secretEnv.%s.key: the key in the Secret" $.where $name) $ref.key | quote }}
      {{- if $ref.optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}

{{/* Volumes every hoard pod mounts: /tmp. */}}
{{- define "hoard.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmp.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end }}
