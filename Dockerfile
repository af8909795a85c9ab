# syntax=docker/dockerfile:1
#
# deploybot's container action image: a static Go binary on distroless
# static (CA certificates, no shell). It runs as root on purpose: the runner
# mounts /github/file_commands owned by the runner's user, and a non-root
# USER cannot write GITHUB_OUTPUT or GITHUB_STEP_SUMMARY
# (docs/research/github-actions.md §1.1 "Non-root is a real problem"). No WORKDIR either:
# the runner sets it to /github/workspace.
#
# Size (linux/amd64; README "Release" has the commands): the stripped
# binary is 20.0 MB and its layer 7.0 MB gzip-compressed (arm64: 18.5 and
# 6.2 MB); distroless
# static adds its own few layers (about 2 MB). The release workflow checks each pushed
# platform's layers (the binary's at most 8 MB, the image at most 10 MB,
# compressed), and cmd/deploybot/release_test.go builds this line's binary
# (at most 25 MB, layer at most 8 MB). It was 65 MB (16.3 MB compressed)
# while bootstrap read the SDK interfaces by reflection, which makes the
# linker keep every method of every SDK client (docs/ARCHITECTURE.md "What
# ships").

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
