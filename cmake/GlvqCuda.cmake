# Optional CUDA backend.
#   GLVQ_CUDA=AUTO: build it when a working nvcc is found; OFF: never; ON: fail without it.
#   CMAKE_CUDA_ARCHITECTURES defaults to "80;90" (CI passes 90 only).
# Sets GLVQ_HAVE_CUDA and, when NCCL is found, the imported target NCCL::nccl.
set(GLVQ_HAVE_CUDA OFF)
if(NOT GLVQ_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # check_language leaves the host compiler empty; nvcc must use ours.
    set(CMAKE_CUDA_HOST_COMPILER ${CMAKE_CXX_COMPILER})
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES "80;90")
    endif()
    enable_language(CUDA)
    # .cu files stay C++17: CUDA20 dialect support needs CMake >= 3.25.2.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(GLVQ_HAVE_CUDA ON)
    find_package(NCCL)
  elseif(GLVQ_CUDA STREQUAL "ON")
    message(FATAL_ERROR "GLVQ_CUDA=ON but no working CUDA compiler was found; "
                        "pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc or use GLVQ_CUDA=AUTO")
  endif()
endif()
