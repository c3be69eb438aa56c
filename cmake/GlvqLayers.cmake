# The project's layers (docs/development.md, "Layers"). Each layer names its
# directories, its library targets, and the layers it may use: code in a
# layer includes headers, and its targets link libraries, only from those.
# Layers only look down; the coordinator never sees the engine.
#
#   base         errors, files, threads, dtypes, safetensors, the packed
#                format, the quantizer vocabulary (config, ranges, results),
#                the generated protos
#   shared       what the services share on top of base: job specs, the
#                wire codecs, metrics, child processes, tokenizers, decode
#                kernels
#   engine       the quantizers (interface, CPU reference, CUDA)
#   model        the transformer used for calibration and evaluation
#   coordinator  the coordinator service
#   worker       the worker service
#
# client/, bench/, tests/ and fuzz/ sit above every layer and may use any.

set(GLVQ_LAYERS base shared engine model coordinator worker)

set(GLVQ_LAYER_DIRS_base common/base common/cli common/packed common/quant
    common/safetensors common/synthetic common/tensor proto glvq)  # glvq/: generated protos
set(GLVQ_LAYER_DIRS_shared common/jobspec common/metrics common/process common/rpc common/text
    kernels)
set(GLVQ_LAYER_DIRS_engine worker/engine worker/cpu worker/cuda)
set(GLVQ_LAYER_DIRS_model model)
set(GLVQ_LAYER_DIRS_coordinator coordinator)
set(GLVQ_LAYER_DIRS_worker worker/service)

set(GLVQ_LAYER_TARGETS_base glvq_common glvq_proto)
set(GLVQ_LAYER_TARGETS_shared glvq_jobspec glvq_metrics glvq_process glvq_rpc glvq_text
    glvq_kernels)
set(GLVQ_LAYER_TARGETS_engine glvq_engine glvq_cuda)
set(GLVQ_LAYER_TARGETS_model glvq_model)
set(GLVQ_LAYER_TARGETS_coordinator glvq_coordinator)
set(GLVQ_LAYER_TARGETS_worker glvq_worker)

set(GLVQ_LAYER_USES_base base)
set(GLVQ_LAYER_USES_shared base shared)
set(GLVQ_LAYER_USES_engine base engine)
set(GLVQ_LAYER_USES_model base engine model)
set(GLVQ_LAYER_USES_coordinator base shared coordinator)
set(GLVQ_LAYER_USES_worker base shared engine worker)

# The layer of a project path such as "worker/engine/config.h" (the longest
# matching directory wins), or "" for paths outside every layer.
function(glvq_layer_of_path path out)
  set(best "")
  set(best_len 0)
  foreach(layer IN LISTS GLVQ_LAYERS)
    foreach(dir IN LISTS GLVQ_LAYER_DIRS_${layer})
      string(LENGTH "${dir}" len)
      string(FIND "${path}" "${dir}/" at)
      if(at EQUAL 0 AND len GREATER best_len)
        set(best ${layer})
        set(best_len ${len})
      endif()
    endforeach()
  endforeach()
  set(${out} "${best}" PARENT_SCOPE)
endfunction()

# Every #include "…" in the sources under `root` that reaches above its
# layer, one line each, in `out` (empty when the tree keeps the rule).
function(glvq_include_violations root out)
  set(found "")
  foreach(layer IN LISTS GLVQ_LAYERS)
    foreach(dir IN LISTS GLVQ_LAYER_DIRS_${layer})
      file(GLOB_RECURSE files LIST_DIRECTORIES false
           "${root}/${dir}/*.h" "${root}/${dir}/*.cc" "${root}/${dir}/*.cu" "${root}/${dir}/*.cuh")
      foreach(file IN LISTS files)
        file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
        foreach(line IN LISTS includes)
          string(REGEX REPLACE "^[^\"]*\"([^\"]+)\".*$" "\\1" header "${line}")
          glvq_layer_of_path("${header}" used)
          if(used STREQUAL "" OR used IN_LIST GLVQ_LAYER_USES_${layer})
            continue()
          endif()
          file(RELATIVE_PATH rel "${root}" "${file}")
          list(APPEND found "${rel} (layer ${layer}) includes ${header} (layer ${used})")
        endforeach()
      endforeach()
    endforeach()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

# Every link from a layered target to a project library above its layer.
function(glvq_link_violations out)
  set(found "")
  foreach(layer IN LISTS GLVQ_LAYERS)
    foreach(target IN LISTS GLVQ_LAYER_TARGETS_${layer})
      if(NOT TARGET ${target})
        continue()
      endif()
      get_target_property(deps ${target} LINK_LIBRARIES)
      if(NOT deps)
        continue()
      endif()
      foreach(dep IN LISTS deps)
        foreach(dep_layer IN LISTS GLVQ_LAYERS)
          if(dep IN_LIST GLVQ_LAYER_TARGETS_${dep_layer}
             AND NOT dep_layer IN_LIST GLVQ_LAYER_USES_${layer})
            list(APPEND found "${target} (layer ${layer}) links ${dep} (layer ${dep_layer})")
          endif()
        endforeach()
      endforeach()
    endforeach()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

function(glvq_fail_on_violations what violations)
  if(violations)
    list(JOIN violations "\n  " text)
    message(FATAL_ERROR "glvq layering: ${what} reach above their layer "
                        "(cmake/GlvqLayers.cmake):\n  ${text}")
  endif()
endfunction()
