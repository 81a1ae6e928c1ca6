import time

time.sleep(8)
print("slept")
