# SPDX-License-Identifier: MIT
# The container image, included from the top Makefile.
#   make image [IMAGE=localhost/dip:latest] [IMAGE_BASE=docker.io/library/debian:bookworm-slim]
#       builds deploy/container/Containerfile with podman. Without IMAGE_BASE the base is made
#       locally with debootstrap (deploy/container/make-base.sh) and cached in podman's store.
#   make image-mpi [IMAGE_MPI=localhost/dip-mpi:latest]  the same plus sshd (target mpi), for
#       the MPI Operator's launcher and workers (deploy/kubernetes/mpijob/)
#   make image-base      only make (or find) that local base
IMAGE ?= localhost/dip:latest
IMAGE_BASE ?=
IMAGE_MPI ?= localhost/dip-mpi:latest

.PHONY: image image-mpi image-base

image:
	@DIP_IMAGE_BASE=$(IMAGE_BASE) deploy/container/build.sh $(IMAGE)
	@podman image inspect --format 'image $(IMAGE): {{.Size}} bytes' $(IMAGE)

image-base:
	deploy/container/make-base.sh

image-mpi:
	@DIP_IMAGE_BASE=$(IMAGE_BASE) deploy/container/build.sh $(IMAGE_MPI) mpi
	@podman image inspect --format 'image $(IMAGE_MPI): {{.Size}} bytes' $(IMAGE_MPI)
