/* tapegrad/version.h — the version of these headers. tg_version() (tensor.h) says
 * which library a program runs with. meson.build's project version is the same number:
 * the build stops if the two disagree, so a release changes both. */
#ifndef TAPEGRAD_VERSION_H
#define TAPEGRAD_VERSION_H

#define TG_VERSION_MAJOR 0
#define TG_VERSION_MINOR 1
#define TG_VERSION_PATCH 0
#define TG_VERSION_STRING "0.1.0"

#endif
