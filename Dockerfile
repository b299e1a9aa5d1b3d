# syntax=docker/dockerfile:1
# The Neraca server image for Docker users. scripts/build-image.sh builds the same image without Docker or a registry
# (mmdebstrap + buildah); both give: a self-contained server in /app, user 10001 (non-root), no shell or package
# manager at run time, a read-only root file system is fine (only /data, for the embedded SQLite store, and /tmp are
# written), SIGTERM stops it gracefully (readiness goes false for NERACA_SHUTDOWN_DRAIN_SECONDS, then in-flight requests
# finish), health at /health/live and /health/ready.
#
#   docker build -t neraca:dev .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp -v neraca-data:/data neraca:dev
#   docker run --rm neraca:dev migrate --database 'Host=...'
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled-extra

FROM ${SDK_IMAGE} AS build
WORKDIR /src
# Restore first, from the project files only, so that a code change does not re-download packages.
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/*/*.csproj ./
RUN for p in *.csproj; do mkdir -p "src/${p%.csproj}" && mv "$p" "src/${p%.csproj}/"; done \
 && dotnet restore src/Neraca.Server/Neraca.Server.csproj -r linux-x64
COPY src/ src/
RUN dotnet publish src/Neraca.Server/Neraca.Server.csproj -c Release -r linux-x64 --self-contained true --no-restore \
      -p:DebugType=none -o /app \
 && mkdir -p /data

# Chiseled Ubuntu: glibc, OpenSSL, ICU and tzdata ("extra"), CA certificates; no shell, no package manager.
FROM ${RUNTIME_IMAGE}
COPY --from=build --chown=10001:10001 /app /app
COPY --from=build --chown=10001:10001 /data /data
USER 10001:10001
WORKDIR /app
ENV ASPNETCORE_URLS=http://+:8080 \
    NERACA_SQLITE_PATH=/data/neraca.db \
    DOTNET_NOLOGO=1
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/Neraca.Server"]
CMD ["serve"]
