cmake_minimum_required(VERSION 3.25)
# The layering check must fail on a tree where a low layer includes a higher
# one, name the file and the header, and pass on the same tree without it.
#   cmake -DGLVQ_SOURCE=<repo> -DWORK=<scratch dir> -P catches_upward_include.cmake
file(REMOVE_RECURSE "${WORK}")
file(WRITE "${WORK}/common/base/ok.h" "#include \"common/packed/layout.h\"\n")
file(WRITE "${WORK}/coordinator/ok.cc" "#include \"common/rpc/chunks.h\"\n#include \"glvq/v1/task.pb.h\"\n")
file(WRITE "${WORK}/model/ok.cc" "#include \"worker/engine/quantizer.h\"\n")
set(check ${CMAKE_COMMAND} -DGLVQ_ROOT=${WORK} -P ${GLVQ_SOURCE}/cmake/check_layers.cmake)

execute_process(COMMAND ${check} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "a tree that keeps the rule was refused:\n${out}")
endif()

file(WRITE "${WORK}/common/rpc/bad.h" "#include <vector>\n#include \"worker/engine/group_range.h\"\n")
file(WRITE "${WORK}/coordinator/bad.cc" "  #  include \"model/llama.h\"\n")
execute_process(COMMAND ${check} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "an upward include was not caught")
endif()
foreach(expected "common/rpc/bad.h \\(layer shared\\) includes worker/engine/group_range.h \\(layer engine\\)"
                 "coordinator/bad.cc \\(layer coordinator\\) includes model/llama.h \\(layer model\\)")
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "expected a line matching '${expected}' in:\n${out}")
  endif()
endforeach()
if(out MATCHES "ok\\.")
  message(FATAL_ERROR "a permitted include was reported:\n${out}")
endif()
