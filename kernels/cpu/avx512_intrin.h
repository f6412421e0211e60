// <immintrin.h> for the *_avx512.cc files. GCC 12.2 reports -Wuninitialized on the
// _mm512_undefined_*() placeholders inside its own AVX-512 intrinsics (slli, cvtph, extract) once
// they are inlined at -O3 (a false positive, GCC PR 105593); silence it for those header lines
// only, so the warning still covers our code. Include this before anything else.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
