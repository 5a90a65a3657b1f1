/* vmstate: being written */
