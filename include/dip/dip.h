/* SPDX-License-Identifier: MIT */
/* The whole public API of dip in one include. */
#ifndef DIP_DIP_H
#define DIP_DIP_H

#include "codec.h"
#include "error.h"
#include "exec.h"
#include "image.h"
#include "limits.h"
#include "op.h"
#include "pipeline.h"
#include "plan.h"
#include "pool.h"
#include "version.h"

#endif
