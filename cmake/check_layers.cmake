cmake_minimum_required(VERSION 3.25)
# Checks that every #include in a source tree keeps the layering rule
# (cmake/GlvqLayers.cmake); fails with one line per violation.
#   cmake -DGLVQ_ROOT=<source tree> -P cmake/check_layers.cmake
include(${CMAKE_CURRENT_LIST_DIR}/GlvqLayers.cmake)
if(NOT GLVQ_ROOT)
  message(FATAL_ERROR "set GLVQ_ROOT to the source tree to check")
endif()
glvq_include_violations("${GLVQ_ROOT}" violations)
glvq_fail_on_violations("includes" "${violations}")
