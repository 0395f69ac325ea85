# reachdiff webhook server: `docker build -t reachdiff .`, then run with the environment
# described in docs/bot.md (GITHUB_APP_ID, GITHUB_PRIVATE_KEY[_PATH], GITHUB_WEBHOOK_SECRET).

# kubectl (with its built-in kustomize) for kustomization roots, checked against its digest.
FROM python:3.11-slim AS kubectl
ARG KUBECTL_VERSION=v1.31.2
ARG TARGETARCH=amd64
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl /kubectl
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256 /kubectl.sha256
RUN echo "$(cat /kubectl.sha256)  /kubectl" | sha256sum --check --strict && chmod 0755 /kubectl

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
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin reachdiff
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["reachdiff", "serve"]
