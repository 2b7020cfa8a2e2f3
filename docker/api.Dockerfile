# The API: FastAPI + uvicorn. It queues jobs and serves results; it never runs the model,
# so it uses the small CPU build of torch (the package depends on torch; the API never imports it).

# The wheel, built from the source tree; the image installs it and keeps no source.
FROM python:3.11.10-slim-bookworm AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY training ./training
COPY service ./service
RUN pip wheel --no-deps . -w /dist

FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Same uid/gid as the worker image: both write the shared storage volume.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.5.1"
# The package carries the served checkpoint and the face detector's weights (package data).
COPY --from=build /dist /dist
RUN pip install /dist/*.whl && rm -rf /dist

# Run from a folder that holds no source: everything is found in the installed package.
WORKDIR /app
USER 10001:10001
# RAMFER_MODEL_DIR unset: the checkpoint in the package. Your own: mount it and set RAMFER_MODEL_DIR (docs/operations.md, "Docker").
ENV RAMFER_STORAGE_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
  CMD ["python", "-m", "service", "health"]
# With RAMFER_REDIS_URL (or REDIS_URL) set, `serve` starts only the API.
CMD ["python", "-m", "service", "serve", "--host", "0.0.0.0", "--port", "8000"]
