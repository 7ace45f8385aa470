/* ds_h5: internal to datasets/ (not installed, not for callers). HDF5's
 * automatic error printing is process-wide; each public ds_ / ds_writer_
 * entry point silences it for its own duration and restores the caller's
 * handler before returning:
 *
 *   ds__quiet q = ds__quiet_begin();
 *   ... HDF5 calls whose failures become err sentences ...
 *   ds__quiet_end(q);
 */
#ifndef DS_H5_H
#define DS_H5_H

#include <hdf5.h>

typedef struct {
  H5E_auto2_t fn;
  void *data;
} ds__quiet;

static inline ds__quiet ds__quiet_begin(void) {
  ds__quiet q = {NULL, NULL};
  H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return q;
}

static inline void ds__quiet_end(ds__quiet q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

#endif
