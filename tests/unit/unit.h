/* Common includes for C unit tests (cmocka). Each tests/unit/test_*.c is
 * one program; `make unit` builds and runs them all. */
#ifndef ORBIT_UNIT_H
#define ORBIT_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#endif
