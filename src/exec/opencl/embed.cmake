# SPDX-License-Identifier: MIT
# cmake -DIN=kernels.cl -DOUT=ocl_kernels.h -P embed.cmake: the OpenCL C source as a C array
# (bytes, so no escaping rules and no length limit on string literals), NUL-terminated.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n"
       bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from kernels.cl by embed.cmake: do not edit. */\n"
     "static const char dip__ocl_source[] = {\n${bytes}0x00};\n")
