# reachdiff webhook server: `docker build -t reachdiff .`, then run with the environment
# described in docs/bot.md (GITHUB_APP_ID, GITHUB_PRIVATE_KEY[_PATH], GITHUB_WEBHOOK_SECRET).

# The renderers, each checked against its published digest: kubectl (its built-in kustomize
# builds kustomization roots) and helm (charts).
FROM python:3.11-slim AS tools
ARG KUBECTL_VERSION=v1.31.2
ARG HELM_VERSION=v3.16.2
ARG TARGETARCH=amd64
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl /kubectl
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256 /kubectl.sha256
ADD https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz /helm.tar.gz
ADD https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz.sha256sum /helm.sha256sum
RUN echo "$(cat /kubectl.sha256)  /kubectl" | sha256sum --check --strict \
 && echo "$(cut -d' ' -f1 /helm.sha256sum)  /helm.tar.gz" | sha256sum --check --strict \
 && tar -xzf /helm.tar.gz -C / --strip-components=1 linux-${TARGETARCH}/helm \
 && chmod 0755 /kubectl /helm

# Build the wheel apart, so the final image holds no build tools or sources.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY analysis ./analysis
COPY bot ./bot
COPY templates ./templates
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --from=tools /kubectl /helm /usr/local/bin/
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin reachdiff
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["reachdiff", "serve"]
