// jarzyn's own ONNX Runtime operators (see ortops.go).
#ifndef JARZYN_ORTOPS_H
#define JARZYN_ORTOPS_H

#include <stddef.h>

// jz_ortops_init finds the ONNX Runtime library already loaded from lib and
// creates the operator domain once. It returns 0, or -1 with a message in err.
int jz_ortops_init(const char *lib, char *err, size_t errlen);

// jz_ortops_add adds the domain to an OrtSessionOptions. It returns 0, or -1
// with a message in err.
int jz_ortops_add(void *session_options, char *err, size_t errlen);

// jz_ortops_version returns the loaded library's version string ("" before
// jz_ortops_init succeeded).
const char *jz_ortops_version(void);

#endif
