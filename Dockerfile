# syntax=docker/dockerfile:1
# The build step is "make build-static", the same target CI runs without a
# container engine, so this file cannot drift from it unnoticed.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build-static STATIC_BIN=/out/irsa-webhook

# distroless/static: no shell, no package manager, CA certificates and
# /etc/passwd for the nonroot user only.
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/irsa-webhook /irsa-webhook
# The distroless "nonroot" user, numeric so runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/irsa-webhook"]
CMD ["--help"]
