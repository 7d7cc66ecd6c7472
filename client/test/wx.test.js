'use strict'
// The client suite on a simulated wx object (see platforms.js), against the local stack.
require('./suite.js')('wx')
