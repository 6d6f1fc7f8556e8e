# One image per service, each with only that service's dependencies:
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=matcher .
# SERVICE is one of: ingestor, matcher, notifier, map-api.
FROM python:3.11-slim AS build
ARG SERVICE
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY shared/ shared/
COPY services/ services/
COPY deploy/local/pyproject.toml deploy/local/pyproject.toml
COPY deploy/local/src/ deploy/local/src/
RUN uv sync --frozen --no-dev --no-editable --package "connect311-${SERVICE}" \
    && rm -rf /root/.cache

FROM python:3.11-slim
ARG SERVICE
RUN useradd --system --uid 10001 connect311
COPY --from=build /src/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 LOG_FORMAT=json
USER connect311
WORKDIR /app
