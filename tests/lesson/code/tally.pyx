def total(long n):
    cdef long i, s = 0
    for i in range(n):
        s += i
    return s
