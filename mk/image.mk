# SPDX-License-Identifier: MIT
# The container image, included from the top Makefile.
#   make image [IMAGE=localhost/dip:latest] [IMAGE_BASE=docker.io/library/debian:bookworm-slim]
#       builds deploy/container/Containerfile with podman. Without IMAGE_BASE the base is made
#       locally with debootstrap (deploy/container/make-base.sh) and cached in podman's store.
#   make image-base      only make (or find) that local base
IMAGE ?= localhost/dip:latest
IMAGE_BASE ?=

.PHONY: image image-base

image:
	@DIP_IMAGE_BASE=$(IMAGE_BASE) deploy/container/build.sh $(IMAGE)
	@podman image inspect --format 'image $(IMAGE): {{.Size}} bytes' $(IMAGE)

image-base:
	deploy/container/make-base.sh
