# syntax=docker/dockerfile:1
#
# deploybot's container action image: a static Go binary on distroless
# static (CA certificates, no shell). It runs as root on purpose: the runner
# mounts /github/file_commands owned by the runner's user, and a non-root
# USER cannot write GITHUB_OUTPUT or GITHUB_STEP_SUMMARY
# (docs/research/github-actions.md §1.1 "Non-root is a real problem"). No WORKDIR either:
# the runner sets it to /github/workspace.
#
# Size: the stripped binary is about 63 MB (the aws-sdk-go-v2 EC2 client
# alone is a third of it), about 14 MB gzip-compressed; with distroless
# static (~2 MB) a job pulls about 16 MB, under the 25 MB target, which the
# release workflow checks on the pushed manifest's compressed layers.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG TARGETOS
ARG TARGETARCH
# The release workflow passes the tag and the commit (deploybot --version).
ARG VERSION=dev
ARG COMMIT=
# -tags release leaves out `deploybot demo` and with it every simulator
# (cmd/deploybot/release_test.go parses this line and checks what it links).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -tags release \
      -ldflags "-s -w -X github.com/deploybot/deploybot/internal/cli.Version=${VERSION} -X github.com/deploybot/deploybot/internal/cli.Commit=${COMMIT}" \
      -o /out/deploybot ./cmd/deploybot

FROM gcr.io/distroless/static-debian12 AS final
COPY --from=build /out/deploybot /deploybot
ENTRYPOINT ["/deploybot", "action"]
