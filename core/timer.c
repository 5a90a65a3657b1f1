/* timer queue: being written */
